//! The browser apps (`web/`, built by Vite into `web/dist`, committed and embedded here at
//! compile time so that building the proxy never needs Node): `GET /app/` (index),
//! `/app/shop.html`, `/app/dashboard.html`, `/app/assets/*`. Served without credentials (the
//! pages log in through [`crate::things`]'s `POST /session`), with a content security policy
//! that lets them reach only this origin (JSON-RPC, WebSocket) and the browser's wallet.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Response, StatusCode};

type Reply = Response<Full<Bytes>>;

#[derive(rust_embed::Embed)]
#[folder = "../web/dist/"]
struct Assets;

/// What the pages may load and reach: this origin only (scripts, styles, JSON-RPC, WebSockets);
/// QR codes and uploaded barcode images are `data:` / `blob:` URLs.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data: blob:; connect-src 'self' ws: wss:; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Answers `GET /app{rest}`.
pub(crate) fn serve(rest: &str) -> Reply {
    if rest.is_empty() {
        return Response::builder()
            .status(StatusCode::PERMANENT_REDIRECT)
            .header(header::LOCATION, "/app/")
            .body(Full::default())
            .unwrap_or_else(|_| Response::new(Full::default()));
    }
    let name = match rest.trim_start_matches('/') {
        "" => "index.html",
        other => other,
    };
    let Some(file) = Assets::get(name) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(format!("no such page: /app/{name}\n"))))
            .unwrap_or_else(|_| Response::new(Full::default()));
    };
    // Vite names assets by content hash: they never change; pages may.
    let cache = if name.starts_with("assets/") { "public, max-age=31536000, immutable" } else { "no-cache" };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, file.metadata.mimetype())
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(Full::new(match file.data {
            // embedded (also in debug builds: `debug-embed`), so no copy per request
            std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
            std::borrow::Cow::Owned(v) => Bytes::from(v),
        }))
        .unwrap_or_else(|_| Response::new(Full::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_served_with_their_type_and_policy() {
        let index = serve("/");
        assert_eq!(index.status(), StatusCode::OK);
        assert!(index.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        assert!(index.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        for page in ["/shop.html", "/dashboard.html"] {
            assert_eq!(serve(page).status(), StatusCode::OK, "{page}");
        }
        assert_eq!(serve("").status(), StatusCode::PERMANENT_REDIRECT);
        assert_eq!(serve("/../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("/nope.js").status(), StatusCode::NOT_FOUND);
    }
}
