//! Drawings written as markup text.
//!
//! A drawing that is redrawn whole whenever its figures change (the scaling
//! diagram, the charts) gains nothing from Leptos's fine-grained views, and
//! in the browser each view type costs build, hydrate and rebuild code of
//! its own: the scaling diagram alone was 17 KB of the brotli-compressed
//! bundle. Such a drawing is written here as SVG text instead, and its
//! container's `inner_html` set from it, on the server and in the browser
//! alike, so the server's first render and the browser's redraws are the
//! same text.

use std::fmt::Write;

pub use protocol::format::Fixed;

/// An attribute's value, as text.
///
/// Drawings measure in `f64`, written with at most two decimals and no
/// trailing zeros ("12.5", "40"). That goes through [`Fixed`], never
/// `f64`'s own `Display`, which would bring Rust's whole float formatting
/// into the browser's bundle.
pub trait Attr {
    fn attr_text(&self) -> String;
}

macro_rules! attr_by_display {
    ($($t:ty),*) => {
        $(impl Attr for $t {
            fn attr_text(&self) -> String {
                self.to_string()
            }
        })*
    };
}

attr_by_display!(str, &str, String, Fixed, u8, u16, u32, u64, usize, i32, i64);

impl Attr for f64 {
    fn attr_text(&self) -> String {
        let text = Fixed(*self, 2).to_string();
        if !text.contains('.') {
            return text; // NaN, inf
        }
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// An SVG `viewBox` of `width` by `height` units from the origin.
pub fn view_box(width: f64, height: f64) -> String {
    format!("0 0 {} {}", width.attr_text(), height.attr_text())
}

/// Attributes: names and values.
pub type Attrs<'a> = [(&'a str, &'a dyn Attr)];

/// `text` made safe inside an element or a quoted attribute: the
/// characters that mean something in markup are written as entities.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Markup being written. Attribute values and text given to it are
/// escaped; only the element names and attribute names are written as
/// they are, and those are the program's own.
#[derive(Default)]
pub struct Markup(String);

impl Markup {
    /// Opens `<name a="v" …>`.
    pub fn open(&mut self, name: &str, attrs: &Attrs) -> &mut Self {
        self.0.push('<');
        self.0.push_str(name);
        for (attr, value) in attrs {
            let _ = write!(self.0, " {attr}=\"{}\"", esc(&value.attr_text()));
        }
        self.0.push('>');
        self
    }

    /// Opens an `<svg>` drawing of `width` by `height` units that scales to
    /// its container, an image described by `label`.
    pub fn svg(&mut self, width: f64, height: f64, label: &str) -> &mut Self {
        self.open(
            "svg",
            &[
                ("xmlns", &"http://www.w3.org/2000/svg"),
                ("viewBox", &view_box(width, height)),
                ("role", &"img"),
                ("aria-label", &label),
            ],
        )
    }

    /// Closes `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.0, "</{name}>");
        self
    }

    /// An element with no children: `<name …></name>`.
    pub fn empty(&mut self, name: &str, attrs: &Attrs) -> &mut Self {
        self.open(name, attrs).close(name)
    }

    /// An element holding only `text`.
    pub fn text(&mut self, name: &str, attrs: &Attrs, text: &str) -> &mut Self {
        self.open(name, attrs);
        self.0.push_str(&esc(text));
        self.close(name)
    }

    /// Markup written elsewhere, as it is.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    pub fn finish(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        assert_eq!(esc(r#"a<b>&"c"'"#), "a&lt;b&gt;&amp;&quot;c&quot;&#39;");
        let mut m = Markup::default();
        m.open("g", &[("data-x", &"1\"2"), ("y", &2.5)])
            .text("text", &[], "<script>")
            .empty("rect", &[("rx", &4)])
            .close("g");
        assert_eq!(
            m.finish(),
            r#"<g data-x="1&quot;2" y="2.5"><text>&lt;script&gt;</text><rect rx="4"></rect></g>"#
        );
    }

    #[test]
    fn drawing_numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        let decimals = [12.5, 40.0, 4.56789, 0.004, 7.996, -1.5, 100.10];
        let written: Vec<String> = decimals.iter().map(Attr::attr_text).collect();
        assert_eq!(written, ["12.5", "40", "4.57", "0", "8", "-1.5", "100.1"]);
        assert_eq!(view_box(600.0, 42.5), "0 0 600 42.5");
    }
}
