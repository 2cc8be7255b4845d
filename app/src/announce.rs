//! What a screen reader is told without anyone looking: one polite live
//! region on every page, saying "order placed" and the status changes of the
//! orders on screen.

use leptos::prelude::*;

/// Says something in the page's live region.
#[derive(Clone, Copy)]
pub struct Announcer {
    message: RwSignal<String>,
}

impl Announcer {
    pub fn new() -> Announcer {
        Announcer { message: RwSignal::new(String::new()) }
    }

    /// Replaces what the region says; assistive technology reads the new text.
    pub fn say(&self, text: impl Into<String>) {
        self.message.set(text.into());
    }
}

impl Default for Announcer {
    fn default() -> Self {
        Announcer::new()
    }
}

/// The live region: present from the first paint (a region added later is
/// not announced), visually hidden.
#[component]
pub fn LiveRegion(announcer: Announcer) -> impl IntoView {
    view! {
        <div class="visually-hidden" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
            {move || announcer.message.get()}
        </div>
    }
}
