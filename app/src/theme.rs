//! The reader's theme: the system's (the default), light, or dark.
//!
//! The choice is kept in local storage under [`KEY`] and applied as
//! `data-theme` on `<html>`; `public/theme.js` applies it again before the
//! first paint of every later page, so no page flashes the other theme. The
//! stylesheet's colours follow `data-theme` when it is set and the system's
//! preference otherwise.

use leptos::prelude::*;

/// Where the choice is kept (also read by `public/theme.js`).
#[cfg(any(feature = "hydrate", feature = "csr"))]
const KEY: &str = "spawnlab-theme";

/// The choices, as stored and as `data-theme` spells them.
const CHOICES: [(&str, &str); 3] = [("system", "System"), ("light", "Light"), ("dark", "Dark")];

/// A labelled select in the header. The server renders "system" (it cannot
/// know); once the page is live it shows what `theme.js` applied. An island.
#[island]
pub fn ThemePicker() -> impl IntoView {
    let choice = RwSignal::new("system".to_string());
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    Effect::new(move |_| choice.set(applied()));
    let pick = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        #[cfg(any(feature = "hydrate", feature = "csr"))]
        apply(&value);
        choice.set(value);
    };
    view! {
        <label class="theme-picker">
            "Theme "
            <select on:change=pick prop:value=move || choice.get()>
                {CHOICES
                    .iter()
                    .map(|(value, name)| view! { <option value=*value>{*name}</option> })
                    .collect_view()}
            </select>
        </label>
    }
}

/// The theme `<html>` carries now.
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn applied() -> String {
    root()
        .and_then(|html| html.get_attribute("data-theme"))
        .filter(|t| CHOICES.iter().any(|(value, _)| value == t))
        .unwrap_or_else(|| "system".into())
}

/// Show `choice` now and remember it for later pages.
#[cfg(any(feature = "hydrate", feature = "csr"))]
fn apply(choice: &str) {
    let system = !matches!(choice, "light" | "dark");
    if let Some(html) = root() {
        let _ = if system {
            html.remove_attribute("data-theme")
        } else {
            html.set_attribute("data-theme", choice)
        };
    }
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = if system {
            storage.remove_item(KEY)
        } else {
            storage.set_item(KEY, choice)
        };
    }
}

#[cfg(any(feature = "hydrate", feature = "csr"))]
fn root() -> Option<web_sys::Element> {
    web_sys::window()?.document()?.document_element()
}
