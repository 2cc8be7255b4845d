//! Small helpers for display and forms: times, short ids, counts, query
//! strings, idempotency keys, focus across a confirm step.

use leptos::prelude::*;

/// The last characters of a ULID: enough to tell orders apart on screen.
pub fn short_id(id: &str) -> String {
    id.chars().skip(id.chars().count().saturating_sub(8)).collect()
}

/// A count with thousands separators: `1,000,000`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `text` for a URL's query string: every byte but unreserved ones
/// percent-encoded (UTF-8).
pub fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string (`?a=1&b=x%20y`) of the pairs whose value is not empty;
/// `"?"` alone when there are none, so a link to it still drops the old query.
pub fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", query_escape(value)))
        .collect();
    format!("?{}", parts.join("&"))
}

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm`, shifted by
/// `offset_minutes` east of UTC, followed by the offset (`UTC`, `UTC+01:00`).
pub fn format_time(ms: u64, offset_minutes: i64) -> String {
    let local = ms as i64 + offset_minutes * 60_000;
    let (days, ms_of_day) = (local.div_euclid(86_400_000), local.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (ms_of_day / 3_600_000, ms_of_day / 60_000 % 60, ms_of_day / 1000 % 60, ms_of_day % 1000);
    let zone = if offset_minutes == 0 {
        "UTC".to_string()
    } else {
        let sign = if offset_minutes > 0 { '+' } else { '-' };
        format!("UTC{sign}{:02}:{:02}", offset_minutes.abs() / 60, offset_minutes.abs() % 60)
    };
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03} {zone}")
}

/// `ms` since the Unix epoch in ISO 8601 (UTC), for `<time datetime>`.
pub fn iso_time(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let (year, month, day) = civil_from_days(days);
    let rest = ms % 86_400_000;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(feature = "hydrate")]
mod browser {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = Math, js_name = random)]
        pub fn random() -> f64;
        pub type Date;
        #[wasm_bindgen(constructor)]
        pub fn new() -> Date;
        #[wasm_bindgen(method, js_name = getTimezoneOffset)]
        pub fn timezone_offset(this: &Date) -> f64;
        #[wasm_bindgen(method, js_name = getTime)]
        pub fn time(this: &Date) -> f64;
        #[wasm_bindgen(js_namespace = performance, js_name = mark)]
        pub fn performance_mark(name: &str);
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        pub fn performance_now() -> f64;
    }
}

/// Milliseconds since the page began loading: for measuring pauses in the
/// browser; always 0 on the server.
pub fn elapsed_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return browser::performance_now();
    #[cfg(not(feature = "hydrate"))]
    0.0
}

/// Marks a moment in the browser's performance timeline (measured by the
/// speed check from the navigation's start); nothing on the server.
pub fn mark(name: &str) {
    #[cfg(feature = "hydrate")]
    browser::performance_mark(name);
    #[cfg(not(feature = "hydrate"))]
    let _ = name;
}

/// Minutes east of UTC of this browser's time zone (0 on the server, which
/// cannot know the reader's).
pub fn local_offset_minutes() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        -(browser::Date::new().timezone_offset() as i64)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

/// A fresh idempotency key for one attempt of a form: time and randomness,
/// visible ASCII.
pub fn new_idempotency_key() -> String {
    #[cfg(feature = "hydrate")]
    {
        let random = |bits: f64| (browser::random() * bits) as u64;
        format!(
            "ui-{:x}-{:x}{:x}",
            browser::Date::new().time() as u64,
            random(4_294_967_296.0),
            random(4_294_967_296.0)
        )
    }
    #[cfg(not(feature = "hydrate"))]
    {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::{SystemTime, UNIX_EPOCH};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        format!("ui-{nanos:x}-{:x}-{:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// A time, readable: UTC when rendered on the server, the browser's local
/// time once hydrated.
#[component]
pub fn Time(at: u64) -> impl IntoView {
    let offset = RwSignal::new(0i64);
    Effect::new(move |_| offset.set(local_offset_minutes()));
    view! { <time datetime=iso_time(at)>{move || format_time(at, offset.get())}</time> }
}

/// A button and the confirm button that replaces it ("Delete", then "Really
/// delete?"): once a person pressed one of them, the keyboard's focus follows
/// to whichever `confirming` shows. Returns the flag to set on each press.
pub fn focus_follows_confirm(
    confirming: Signal<bool>,
    button: NodeRef<leptos::html::Button>,
    really_button: NodeRef<leptos::html::Button>,
) -> StoredValue<bool> {
    let pressed = StoredValue::new(false);
    Effect::new(move |_| {
        let shown = if confirming.get() { really_button.get() } else { button.get() };
        if let Some(button) = shown.filter(|_| pressed.get_value()) {
            let _ = button.focus();
        }
    });
    pressed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(grouped(12_345_678), "12,345,678");
    }

    #[test]
    fn query_strings_escape_their_values_and_leave_out_empty_ones() {
        assert_eq!(
            query_string(&[("status", "pending"), ("q", "oak chair & co/é")]),
            "?status=pending&q=oak%20chair%20%26%20co%2F%C3%A9"
        );
        assert_eq!(query_string(&[("status", ""), ("q", "")]), "?");
    }

    #[test]
    fn times_read_as_calendar_dates() {
        assert_eq!(format_time(0, 0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(format_time(1_700_000_000_123, 0), "2023-11-14 22:13:20.123 UTC");
        assert_eq!(format_time(1_700_000_000_123, 60), "2023-11-14 23:13:20.123 UTC+01:00");
        assert_eq!(format_time(1_700_000_000_123, -330), "2023-11-14 16:43:20.123 UTC-05:30");
        assert_eq!(iso_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
