//! The result of a run: JSON for machines (and `--compare`), Markdown and an
//! SVG latency histogram for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::scenarios::{Better, Figure};
use crate::stats::Samples;

/// Everything a run writes to `<timestamp>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub schema: u32,
    pub started_at: String,
    pub command: String,
    pub mode: String,
    pub duration_s: f64,
    pub target: BTreeMap<String, String>,
    pub machine: BTreeMap<String, String>,
    pub sizes: serde_json::Value,
    pub figures: Vec<Figure>,
    pub scenarios: BTreeMap<String, ScenarioResult>,
    pub failures: Vec<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    #[serde(default)]
    pub skipped: Option<String>,
    #[serde(default)]
    pub failures: Vec<String>,
    #[serde(default)]
    pub details: BTreeMap<String, serde_json::Value>,
}

/// `2026-11-28T23:58:12Z` and `20261128T235812Z` for now.
pub fn timestamps() -> (String, String) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    (format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z"), format!("{y:04}{mo:02}{d:02}T{h:02}{m:02}{s:02}Z"))
}

/// A number as people read it: thousands separated, a sensible number of decimals.
pub fn number(value: f64) -> String {
    // By the value as it will be rounded: 99.97 shows as 100, not 100.0.
    let decimals = match value.abs() {
        v if v.fract() == 0.0 || v >= 99.95 => 0,
        v if v >= 9.995 => 1,
        v if v >= 0.9995 => 2,
        _ => 3,
    };
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') { "-" } else { "" };
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

pub fn value_text(figure: &Figure) -> String {
    match figure.value {
        None => "n/a".to_string(),
        Some(v) if figure.unit.is_empty() => number(v),
        Some(v) => format!("{} {}", number(v), figure.unit),
    }
}

/// Figures shown in the main table (per-command counts have a table of their own).
fn headline(figure: &Figure) -> bool {
    !figure.key.starts_with("redis.calls_per_order.")
}

/// The table of figures as aligned text, for the terminal.
pub fn text_table(result: &RunResult) -> String {
    let rows: Vec<(String, String, String)> = result
        .figures
        .iter()
        .filter(|f| headline(f))
        .map(|f| (f.scenario.clone(), f.label.clone(), value_text(f)))
        .collect();
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0).max(8);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0).max(6);
    let mut out = String::new();
    let mut last = "";
    for (scenario, label, value) in &rows {
        let shown = if scenario == last { "" } else { scenario.as_str() };
        last = scenario;
        let _ = writeln!(out, "  {shown:<w0$}  {label:<w1$}  {value}");
    }
    for (name, scenario) in in_run_order(result) {
        if let Some(why) = &scenario.skipped {
            let _ = writeln!(out, "  {name:<w0$}  skipped: {why}");
        }
    }
    out
}

/// The Markdown report.
pub fn markdown(result: &RunResult, svg_name: Option<&str>, comparison: Option<&str>) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Stockflow benchmark, {}\n", result.started_at.replace('T', " ").replace('Z', " UTC"));
    let _ = writeln!(md, "Command: `{}` ({} run, {:.0} s)\n", result.command, result.mode, result.duration_s);
    let describe =
        |map: &BTreeMap<String, String>| map.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(" · ");
    let _ = writeln!(md, "- Target: {}", describe(&result.target));
    let _ = writeln!(md, "- Machine: {}\n", describe(&result.machine));
    if result.failures.is_empty() {
        let _ = writeln!(md, "Every scenario ran and every invariant held.\n");
    } else {
        let _ = writeln!(md, "**{} failure(s):**\n", result.failures.len());
        for failure in &result.failures {
            let _ = writeln!(md, "- {failure}");
        }
        md.push('\n');
    }
    for warning in &result.warnings {
        let _ = writeln!(md, "- Warning: {warning}");
    }
    if !result.warnings.is_empty() {
        md.push('\n');
    }
    let _ = writeln!(md, "| scenario | figure | value |\n|---|---|---:|");
    for figure in result.figures.iter().filter(|f| headline(f)) {
        let _ = writeln!(md, "| {} | {} | {} |", figure.scenario, figure.label, value_text(figure));
    }
    for (name, scenario) in in_run_order(result) {
        if let Some(why) = &scenario.skipped {
            let _ = writeln!(md, "| {name} | skipped | {why} |");
        }
    }
    if let Some(redis) = result.scenarios.get("redis").filter(|s| s.skipped.is_none()) {
        let order: Vec<String> =
            redis.details.get("command_order").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
        let per: BTreeMap<String, BTreeMap<String, f64>> =
            redis.details.get("per_command").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
        let _ = writeln!(
            md,
            "\n## Redis commands per order\n\nOver the whole life of an order; commands run inside Lua scripts \
             count as well as the `evalsha` that ran them.\n\n| command | calls per order | µs per order |\n|---|---:|---:|"
        );
        for name in &order {
            if let Some(stat) = per.get(name) {
                let _ = writeln!(
                    md,
                    "| `{name}` | {} | {} |",
                    number(stat.get("calls").copied().unwrap_or(0.0)),
                    number(stat.get("usec").copied().unwrap_or(0.0))
                );
            }
        }
    }
    let cpu_rows: Vec<_> = in_run_order(result)
        .filter_map(|(name, s)| Some((name, s.details.get("cores_busy")?, s.details.get("cpu_window_s")?)))
        .collect();
    if !cpu_rows.is_empty() {
        let _ = writeln!(
            md,
            "\n## Where the CPU went\n\nCores busy on average over each scenario's window (load and drain); \
             `interrupts` is the kernel's packet handling (loopback traffic included), which no process is \
             charged for; `other` is every other process on the machine.\n\n\
             | scenario | window | server | workers | redis | bench | interrupts | other |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|"
        );
        for (name, cores, window) in cpu_rows {
            let core = |p: &str| cores.get(p).and_then(|v| v.as_f64()).map_or("n/a".to_string(), |v| format!("{v:.2}"));
            let _ = writeln!(
                md,
                "| {name} | {:.1} s | {} | {} | {} | {} | {} | {} |",
                window.as_f64().unwrap_or(0.0),
                core("server"),
                core("workers"),
                core("redis"),
                core("bench"),
                core("interrupts"),
                core("other")
            );
        }
    }
    if let Some(svg) = svg_name {
        let _ = writeln!(md, "\n## POST → final status (latency scenario)\n\n![latency histogram]({svg})");
    }
    if let Some(comparison) = comparison {
        let _ = writeln!(md, "\n## Compared with an earlier run\n\n```\n{comparison}```");
    }
    let _ = writeln!(
        md,
        "\n## Reading this\n\nLatencies are nearest-rank percentiles in milliseconds. The load generator runs \
         on the same machine as the server, the workers and Redis, so it takes some of their CPU (the `bench` \
         column). README.md (\"Benchmark\") describes every scenario; the JSON beside this file has every \
         figure and detail."
    );
    md
}

/// The scenarios of a result in the order they run.
fn in_run_order(result: &RunResult) -> impl Iterator<Item = (&str, &ScenarioResult)> {
    crate::scenarios::ALL.iter().filter_map(|name| result.scenarios.get(*name).map(|s| (*name, s)))
}

/// A histogram of latencies on a logarithmic axis, as standalone SVG.
pub fn histogram_svg(title: &str, samples: &mut Samples) -> Option<String> {
    let summary = samples.summary()?;
    let values = samples.sorted();
    let (width, height) = (760.0_f64, 380.0_f64);
    let (left, right, top, bottom) = (60.0, 20.0, 50.0, 50.0);
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let lo_us = (values[0].max(10)) as f64;
    let hi_us = (*values.last()? as f64).max(lo_us * 10.0);
    let (lo_exp, hi_exp) = (lo_us.log10().floor(), hi_us.log10().ceil());
    const BINS_PER_DECADE: f64 = 20.0;
    let bins = ((hi_exp - lo_exp) * BINS_PER_DECADE) as usize;
    let mut counts = vec![0u64; bins.max(1)];
    let last = counts.len() - 1;
    for &v in values {
        let position = ((v.max(1) as f64).log10() - lo_exp) * BINS_PER_DECADE;
        counts[(position.max(0.0) as usize).min(last)] += 1;
    }
    let peak = *counts.iter().max()? as f64;
    let x_of = |us: f64| left + (us.log10() - lo_exp) / (hi_exp - lo_exp) * plot_w;
    let y_of = |count: f64| top + plot_h - count / peak * plot_h;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(svg, r#"<text x="{left}" y="22" font-size="14" font-weight="bold">{}</text>"#, escape(title));
    let _ = writeln!(
        svg,
        r##"<text x="{left}" y="40" fill="#555">p50 {} ms · p99 {} ms · max {} ms · {} orders (log scale)</text>"##,
        number(summary.p50_ms),
        number(summary.p99_ms),
        number(summary.max_ms),
        number(summary.count as f64)
    );
    let bar_w = plot_w / counts.len() as f64;
    for (i, &count) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
        let y = y_of(count as f64);
        let _ = writeln!(
            svg,
            r##"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="#4a7ab5"><title>{count}</title></rect>"##,
            left + i as f64 * bar_w,
            (bar_w - 1.0).max(0.5),
            top + plot_h - y
        );
    }
    // Axes, with ticks at 1, 2 and 5 of every decade.
    let _ = writeln!(
        svg,
        r##"<path d="M{left} {top} V{:.1} H{:.1}" stroke="#333" fill="none"/>"##,
        top + plot_h,
        left + plot_w
    );
    let mut exp = lo_exp;
    while exp < hi_exp {
        for step in [1.0, 2.0, 5.0] {
            let us = step * 10f64.powf(exp);
            let x = x_of(us);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                top + plot_h,
                top + plot_h + 5.0,
                top + plot_h + 18.0,
                duration_label(us)
            );
        }
        exp += 1.0;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency</text>"#,
        left + plot_w / 2.0,
        height - 10.0
    );
    for fraction in [0.5, 1.0] {
        let count = peak * fraction;
        let y = y_of(count);
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            number(count.round())
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="14" y="{:.1}" transform="rotate(-90 14 {:.1})" text-anchor="middle">orders</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    for (label, ms, colour) in [("p50", summary.p50_ms, "#2a9d4b"), ("p99", summary.p99_ms, "#d0452f")] {
        let x = x_of((ms * 1000.0).max(lo_us));
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="{colour}" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" fill="{colour}">{label}</text>"#,
            top + plot_h,
            x + 3.0,
            top + 12.0
        );
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

fn duration_label(us: f64) -> String {
    if us >= 1e6 {
        format!("{} s", us / 1e6)
    } else {
        format!("{} ms", us / 1e3)
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Changes smaller than this get no verdict: two runs on one machine differ
/// by about that much with nothing changed (p99s and maxima by more).
const NOISE_PERCENT: f64 = 5.0;

/// The change of every figure both runs have: before → after, by how much,
/// and whether that is better or worse (when it is past the noise).
pub fn compare(old: &RunResult, new: &RunResult, old_name: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compared with {old_name} ({}, {} run) → {} ({} run)",
        old.started_at, old.mode, new.started_at, new.mode
    );
    let _ =
        writeln!(out, "(changes under {NOISE_PERCENT}% get no verdict: runs differ that much with nothing changed)");
    if old.mode != new.mode {
        let _ = writeln!(out, "warning: a {} run against a {} run: the sizes differ", old.mode, new.mode);
    }
    let before: BTreeMap<&str, &Figure> = old.figures.iter().map(|f| (f.key.as_str(), f)).collect();
    let rows: Vec<[String; 5]> = new
        .figures
        .iter()
        .filter_map(|f| {
            let old = before.get(f.key.as_str())?;
            let label = if f.unit.is_empty() {
                format!("{} {}", f.scenario, f.label)
            } else {
                format!("{} {} ({})", f.scenario, f.label, f.unit)
            };
            let (change, verdict) = match (old.value, f.value) {
                (Some(a), Some(b)) if a != 0.0 => {
                    let pct = (b - a) / a.abs() * 100.0;
                    let verdict = match f.better {
                        _ if pct.abs() < NOISE_PERCENT => "",
                        Better::Higher if pct > 0.0 => "better",
                        Better::Lower if pct < 0.0 => "better",
                        Better::Neither => "",
                        _ => "worse",
                    };
                    (format!("{pct:+.1}%"), verdict)
                }
                (Some(a), Some(b)) if a == b => ("0%".to_string(), ""),
                (Some(_), Some(_)) => ("new".to_string(), ""),
                _ => ("".to_string(), ""),
            };
            let show = |v: Option<f64>| v.map_or("n/a".to_string(), number);
            Some([label, show(old.value), show(f.value), change, verdict.to_string()])
        })
        .collect();
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:>w1$} → {:<w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    // Figures the new run lacks, by scenario (a run with --only, or a figure since renamed).
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for figure in old.figures.iter().filter(|f| !new.figures.iter().any(|n| n.key == f.key)) {
        *missing.entry(figure.scenario.as_str()).or_default() += 1;
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(scenario, n)| format!("{scenario} ({n})")).collect();
        let _ = writeln!(out, "  (figures only in {old_name}: {})", list.join(", "));
    }
    out
}

pub fn load(path: &Path) -> Result<RunResult> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a result of scripts/bench", path.display()))
}

/// Writes `<stamp>.json`, `.md`, `.svg` and `latest.json` under `dir`; returns the paths written.
pub fn write(
    dir: &Path,
    stamp: &str,
    result: &RunResult,
    histogram: Option<&mut (String, Samples)>,
    comparison: Option<&str>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(result)? + "\n";
    let json_path = dir.join(format!("{stamp}.json"));
    std::fs::write(&json_path, &json)?;
    written.push(json_path);
    let svg_name = format!("{stamp}.svg");
    let svg = histogram.and_then(|(title, samples)| histogram_svg(title, samples));
    if let Some(svg) = &svg {
        let path = dir.join(&svg_name);
        std::fs::write(&path, svg)?;
        written.push(path);
    }
    let md_path = dir.join(format!("{stamp}.md"));
    std::fs::write(&md_path, markdown(result, svg.as_ref().map(|_| svg_name.as_str()), comparison))?;
    written.push(md_path);
    std::fs::write(dir.join("latest.json"), &json)?;
    written.push(dir.join("latest.json"));
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(1_234_567.0), "1,234,567");
        assert_eq!(number(4321.4), "4,321");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(1.2345), "1.23");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(45.0), "45", "whole numbers (counts) have no decimals");
        assert_eq!(number(99.97), "100");
        assert_eq!(number(9.999), "10.0");
        assert_eq!(number(-2.5), "-2.50");
    }

    #[test]
    fn timestamps_are_utc_and_sortable() {
        let (iso, stamp) = timestamps();
        assert_eq!(iso.len(), 20);
        assert_eq!(stamp.len(), 16);
        assert_eq!(&iso[..4], &stamp[..4]);
        assert!(iso.ends_with('Z') && stamp.ends_with('Z'));
    }

    fn figure(key: &str, value: Option<f64>, better: Better) -> Figure {
        let (scenario, name) = key.split_once('.').unwrap();
        Figure { key: key.into(), scenario: scenario.into(), label: name.into(), value, unit: "ms".into(), better }
    }

    fn run(figures: Vec<Figure>) -> RunResult {
        RunResult {
            schema: 1,
            started_at: "2026-01-01T00:00:00Z".into(),
            command: "scripts/bench".into(),
            mode: "full".into(),
            duration_s: 1.0,
            target: BTreeMap::new(),
            machine: BTreeMap::new(),
            sizes: serde_json::Value::Null,
            figures,
            scenarios: BTreeMap::new(),
            failures: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn a_comparison_gives_before_after_and_the_change_with_its_direction() {
        let old = run(vec![
            figure("latency.p99", Some(10.0), Better::Lower),
            figure("throughput.rate", Some(1000.0), Better::Higher),
            figure("lists.gone", Some(1.0), Better::Lower),
        ]);
        let new = run(vec![
            figure("latency.p99", Some(12.0), Better::Lower),
            figure("throughput.rate", Some(1500.0), Better::Higher),
            figure("fanout.new", None, Better::Lower),
        ]);
        let text = compare(&old, &new, "old.json");
        assert!(
            text.contains("latency p99 (ms)") && text.contains("10 → 12") && text.contains("+20.0%  worse"),
            "{text}"
        );
        assert!(text.contains("1,000 → 1,500") && text.contains("+50.0%  better"), "{text}");
        assert!(text.contains("figures only in old.json: lists (1)"), "{text}");
        assert!(!text.contains("fanout"), "{text}");
    }

    #[test]
    fn the_histogram_is_svg_with_its_percentiles() {
        let mut samples = Samples::default();
        for i in 1..=1000 {
            samples.push_us(i * 37);
        }
        let svg = histogram_svg("POST → final <x>", &mut samples).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("p50 18.5 ms") && svg.contains("&lt;x&gt;"), "{svg}");
        assert!(histogram_svg("empty", &mut Samples::default()).is_none());
    }
}
