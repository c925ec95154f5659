//! Pages go out gzip-compressed to browsers that take it, one chunk at a
//! time.
//!
//! Leptos streams a page: the text first, then each part that waits for
//! slow data (the compare figures, while the server measures) as it
//! resolves. A compressor that waits for a full buffer, as tower-http's does
//! (tower-rs/tower-http#292), would hold the whole page back until the
//! slowest part is ready; this one flushes after every chunk, so a learner
//! reads the text at once either way. The bundle is not compressed here:
//! it is served from the `.br` and `.gz` files built beside it.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures_util::{stream, StreamExt};
use std::io::Write;

/// Compress `text/html` answers for requests that accept gzip.
pub async fn html(request: Request, next: Next) -> Response {
    let gzip = accepts_gzip(request.headers());
    let response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"));
    if !gzip || !html || response.headers().contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    Response::from_parts(parts, Body::from_stream(gzip_chunks(body)))
}

/// The body, gzip-compressed, each chunk flushed as it comes.
fn gzip_chunks(body: Body) -> impl futures_util::Stream<Item = Result<Bytes, axum::Error>> {
    let encoder = GzEncoder::new(Vec::new(), Compression::default());
    stream::unfold(
        (body.into_data_stream(), Some(encoder)),
        |(mut chunks, encoder)| async move {
            let mut encoder = encoder?;
            loop {
                match chunks.next().await {
                    Some(Ok(chunk)) => {
                        let written = encoder
                            .write_all(&chunk)
                            .and_then(|()| encoder.flush())
                            .map_err(axum::Error::new);
                        if let Err(e) = written {
                            return Some((Err(e), (chunks, None)));
                        }
                        let out = std::mem::take(encoder.get_mut());
                        // An empty chunk would read as the end of the body.
                        if !out.is_empty() {
                            return Some((Ok(Bytes::from(out)), (chunks, Some(encoder))));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (chunks, None))),
                    None => {
                        let last = encoder.finish().map_err(axum::Error::new).map(Bytes::from);
                        return Some((last, (chunks, None)));
                    }
                }
            }
        },
    )
}

/// Whether `Accept-Encoding` lists gzip without refusing it (`q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn gzip_is_used_only_where_it_is_accepted() {
        assert!(accepts_gzip(&accept("gzip, deflate, br, zstd")));
        assert!(accepts_gzip(&accept("br;q=1.0, gzip;q=0.8")));
        assert!(!accepts_gzip(&accept("br")));
        assert!(!accepts_gzip(&accept("gzip;q=0")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[tokio::test]
    async fn each_chunk_is_readable_before_the_body_ends() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Result<Bytes, std::io::Error>>();
        let body = Body::from_stream(tokio_stream_of(rx));
        let mut out = Box::pin(gzip_chunks(body));
        let mut sent = Vec::new();
        tx.send(Ok(Bytes::from_static(b"<p>the page's text</p>")))
            .unwrap();
        sent.extend(out.next().await.unwrap().unwrap());
        // The body has not ended, yet what was sent decompresses.
        assert_eq!(decode_prefix(&sent), "<p>the page's text</p>");
        tx.send(Ok(Bytes::from_static(b"<p>later</p>"))).unwrap();
        drop(tx);
        while let Some(chunk) = out.next().await {
            sent.extend(chunk.unwrap());
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&sent[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "<p>the page's text</p><p>later</p>");
    }

    /// What a gzip stream cut short decodes to so far.
    fn decode_prefix(gz: &[u8]) -> String {
        let mut decoder = flate2::read::GzDecoder::new(gz);
        let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
        while let Ok(n) = decoder.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    fn tokio_stream_of<T: Send + 'static>(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Send {
        stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
