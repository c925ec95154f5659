//! spawnlab's user interface.
//!
//! The crate is compiled three ways: into the server with `ssr` (render HTML),
//! to wasm with `hydrate` (take over that HTML in the browser), and to wasm
//! with `csr` (Trunk's client-only build, rendering from scratch). The wire
//! types, the catalogue and the fold of a run's events live in the
//! `protocol` crate beside it (`app/protocol`), which the server, the CLI and
//! the tests share without linking any of this.
//!
//! # Layout
//!
//! - `client`: the browser's WebSocket connection.
//! - `lab`: the lab component, its controls, timeline and charts.
//! - `pages`: the pages.
//! - [`compare`]: the compare page and the server function behind its figures.
//! - [`quoted`]: every figure the pages quote rather than measure, with its
//!   source and date.
//! - [`topics`]: the sections each model's page adds beyond its lab.
//! - `theme`: the header's light/dark picker.

// The lab's views nest deeply enough that computing the layout of their
// hydrating futures needs more than the default 128 levels.
#![recursion_limit = "256"]

pub mod compare;
pub mod quoted;
pub mod topics;

mod client;
mod lab;
mod pages;
mod theme;

use compare::ComparePage;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags};
use leptos_router::components::{Route, Router, Routes, A};
use leptos_router::{SsrMode, StaticSegment};
use pages::{
    ChildProcessPage, ClusterPage, HomePage, MainThreadPage, NotFound, ScalingPage, ThreadsPage,
};
use theme::ThemePicker;

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // Before any paint: the reader's theme, if one was picked.
                <script src="/theme.js"></script>
                <AutoReload options=options.clone()/>
                <Bundle options/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The version of the built bundle (a digest of its files) that pages
/// name in the bundle's URLs (`/pkg/spawnlab.wasm?v=...`). The server
/// provides it when it renders a page and caches those URLs for a year,
/// since a new build changes the version and so the URL; without it the
/// URLs carry no version and are revalidated on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleVersion(pub String);

/// The stylesheet and the bundle, by their versioned URLs, and the script
/// that loads the bundle and starts each island (`islands.js`). It stands
/// in for Leptos's own `HydrationScripts`, whose URLs cannot carry a
/// version.
#[component]
fn Bundle(options: LeptosOptions) -> impl IntoView {
    // In islands mode the page as a whole is not hydrated, so the server
    // renders none of the markers whole-page hydration would need (as
    // `HydrationScripts islands=true` does).
    #[cfg(feature = "ssr")]
    if let Some(shared) = Owner::current_shared_context() {
        shared.set_is_hydrating(false);
    }
    let version = use_context::<BundleVersion>()
        .map(|v| format!("?v={}", v.0))
        .unwrap_or_default();
    let base = format!("/{}/{}", options.site_pkg_dir, options.output_name);
    let (js, wasm, css) = (
        format!("{base}.js{version}"),
        format!("{base}.wasm{version}"),
        format!("{base}.css{version}"),
    );
    let start = format!(
        "{}({js:?}, {wasm:?});",
        include_str!("islands.js").trim_end()
    );
    view! {
        // The id lets `cargo leptos watch` swap the stylesheet in place.
        <link rel="stylesheet" id="leptos" href=css/>
        <link rel="modulepreload" href=js/>
        <link rel="preload" href=wasm r#as="fetch" r#type="application/wasm" crossorigin=""/>
        <script type="module">{start}</script>
    }
}

/// The whole site: header, the routed page, footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Router>
            <a class="skip" href="#main">"Skip to content"</a>
            <header class="site-header">
                <A href="/" attr:class="brand">"spawnlab"</A>
                <nav aria-label="Main">
                    <A href="/">"Overview"</A>
                    <A href="/main-thread">"Main thread"</A>
                    <A href="/child-process">"Child processes"</A>
                    <A href="/cluster">"Cluster"</A>
                    <A href="/threads">"Worker threads"</A>
                    <A href="/scaling">"Beyond one machine"</A>
                    <A href="/compare">"Compare"</A>
                </nav>
                <ThemePicker/>
            </header>
            <main id="main">
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage/>
                    <Route path=StaticSegment("threads") view=ThreadsPage/>
                    <Route path=StaticSegment("child-process") view=ChildProcessPage/>
                    <Route path=StaticSegment("cluster") view=ClusterPage/>
                    <Route path=StaticSegment("main-thread") view=MainThreadPage/>
                    <Route path=StaticSegment("scaling") view=ScalingPage/>
                    // In order, so the measured table is in the HTML itself.
                    <Route path=StaticSegment("compare") view=ComparePage ssr=SsrMode::InOrder/>
                </Routes>
            </main>
            <footer class="site-footer">
                <p>
                    "Every figure in a lab is measured on the server that sent this page, at the "
                    "moment you press Run. Quoted figures name their source."
                </p>
                <Live/>
            </footer>
        </Router>
    }
}

/// The page's last island: the browser hydrates islands in document order,
/// so when this one's effect runs every island before it is live. It marks
/// `<main>` with `data-hydrated="true"` for readers and the browser tests
/// (the server renders nothing here, and the marker is absent until then).
#[island]
fn Live() -> impl IntoView {
    #[cfg(any(feature = "hydrate", feature = "csr"))]
    Effect::new(move |_| {
        if let Some(main) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("main"))
        {
            let _ = main.set_attribute("data-hydrated", "true");
        }
    });
}

/// Entry point of the hydrating wasm bundle (cargo-leptos). Only islands
/// hydrate: Leptos's script calls each island's own entry point after this.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}

/// Entry point of the client-only bundle (Trunk).
#[cfg(feature = "csr")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}
