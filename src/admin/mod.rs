//! The admin HTTP listener (control plane, on the control executor, never on a shard): metrics,
//! health, readiness, effective config, reload, connections and the log level.
//!
//! | Method and path | Auth | Answer |
//! |---|---|---|
//! | `GET /healthz` | no | 200 `ok`: the process is alive |
//! | `GET /readyz` | no | 200 or 503, JSON [`crate::runtime::control::Readiness`] |
//! | `GET /metrics` | yes | OpenMetrics text |
//! | `GET /config` | yes | effective config as JSON, secrets redacted |
//! | `POST /reload` | yes | JSON [`crate::runtime::control::ReloadReport`]; 200 applied/unchanged, 422 rejected, 500 failed |
//! | `GET /connections?limit=N` | yes | per-shard counts and up to N (default 20, at most 1000) connections per shard |
//! | `GET /log-level`, `PUT /log-level` | yes | the tracing filter in force; PUT sets it (body: a directive) |
//!
//! "Auth" means `Authorization: Bearer <admin.bearer_token>` when a token is configured.

pub mod io;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future::or;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use crate::config::reload;
use crate::runtime::control::ControlPlane;

/// Longest an admin connection may stay open (requests are small; this bounds slow clients).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body accepted (PUT /log-level).
const MAX_BODY_BYTES: usize = 4096;
/// Most connections listed per shard by GET /connections.
const MAX_CONNECTION_SAMPLE: usize = 1000;

type Resp = Response<Full<Bytes>>;

/// Binds the admin listener (before any shard listens, so a bad address stops start-up). No
/// `SO_REUSEPORT`: a second process on the same port is an error, not a silent share.
///
/// # Errors
/// The bind error.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Serves admin requests until the process exits. Call on the control executor.
pub async fn serve(listener: std::net::TcpListener, cp: Rc<ControlPlane>) {
    let listener = crate::proxy::sockopt::into_glommio_listener(listener);
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin accept failed");
                glommio::timer::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let cp = cp.clone();
        glommio::spawn_local(async move {
            let service = hyper::service::service_fn(move |req| {
                let cp = cp.clone();
                async move { Ok::<_, Infallible>(handle(&cp, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(io::HyperIo(stream), service);
            let res = or(async { Some(conn.await) }, async {
                glommio::timer::sleep(CONNECTION_TIMEOUT).await;
                None
            })
            .await;
            if let Some(Err(e)) = res {
                tracing::debug!(error = %e, "admin connection error");
            }
        })
        .detach();
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    match serde_json::to_vec_pretty(v) {
        Ok(mut body) => {
            body.push(b'\n');
            text(status, body, "application/json")
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
            "text/plain; charset=utf-8",
        ),
    }
}

fn error(status: StatusCode, message: &str) -> Resp {
    json(status, &serde_json::json!({ "error": message }))
}

/// Whether `req` carries the configured bearer token (always true when none is configured).
fn authorized(cp: &ControlPlane, req: &Request<Incoming>) -> bool {
    let config = cp.config();
    let Some(token) = config.admin.as_ref().and_then(|a| a.bearer_token.as_ref()) else {
        return true;
    };
    let Some(given) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

fn query_usize(req: &Request<Incoming>, key: &str) -> Option<usize> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.parse().ok())?
    })
}

async fn handle(cp: &Rc<ControlPlane>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (&method, path.as_str()) {
        (&Method::GET, "/healthz") => {
            return text(StatusCode::OK, "ok\n", "text/plain; charset=utf-8")
        }
        (&Method::GET, "/readyz") => {
            let r = cp.readiness().await;
            let status = if r.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            return json(status, &r);
        }
        _ => {}
    }
    let known = matches!(
        path.as_str(),
        "/metrics" | "/config" | "/reload" | "/connections" | "/log-level"
    );
    if !known {
        return error(StatusCode::NOT_FOUND, "no such endpoint");
    }
    if !authorized(cp, &req) {
        let mut r = error(StatusCode::UNAUTHORIZED, "bearer token required");
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    match (&method, path.as_str()) {
        (&Method::GET, "/metrics") => text(
            StatusCode::OK,
            crate::metrics::render(cp.gather().await),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        (&Method::GET, "/config") => {
            let config = cp.config();
            let classes: serde_json::Map<String, serde_json::Value> = reload::KEYS
                .iter()
                .map(|(k, c)| ((*k).to_string(), serde_json::json!(c)))
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({
                    "config": reload::effective_json(&config),
                    "reload_classes": classes,
                }),
            )
        }
        (&Method::POST, "/reload") => {
            let report = cp.reload("admin").await;
            let status = match report.outcome {
                "applied" | "unchanged" => StatusCode::OK,
                "rejected" => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            json(status, &report)
        }
        (&Method::GET, "/connections") => {
            let limit = query_usize(&req, "limit")
                .unwrap_or(20)
                .min(MAX_CONNECTION_SAMPLE);
            let shards = cp.connections(limit).await;
            let active: usize = shards.iter().map(|s| s.active).sum();
            json(
                StatusCode::OK,
                &serde_json::json!({ "active": active, "shards": shards }),
            )
        }
        (&Method::GET, "/log-level") => json(
            StatusCode::OK,
            &serde_json::json!({ "level": cp.log_level() }),
        ),
        (&Method::PUT, "/log-level") => {
            let body = match Limited::new(req.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
            {
                Ok(b) => b.to_bytes(),
                Err(e) => return error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string()),
            };
            let Ok(directive) = std::str::from_utf8(&body) else {
                return error(StatusCode::BAD_REQUEST, "body is not UTF-8");
            };
            match cp.set_log_level(directive.trim()) {
                Ok(()) => json(
                    StatusCode::OK,
                    &serde_json::json!({ "level": cp.log_level() }),
                ),
                Err(e) => error(StatusCode::BAD_REQUEST, &e),
            }
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}
