//! The per-request layer every served route goes through: it applies the fault rules (latency,
//! injected errors, 429 bursts, dropped connections) and counts requests by route, status and
//! identity for tests and benchmarks (read as JSON through the admin API), with the most
//! requests in flight at once (so a test can tell requests sent together from one after another).
//!
//! Labels are bounded: routes are route templates, statuses are numbers, identities are the client
//! ids of tokens this dev vault minted (or `-` before authentication).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::faults::{Decision, Faults};
use crate::reply::kv_error;

/// The identity behind a request, as the response extension the counters read.
#[derive(Debug, Clone)]
pub struct CallerTag(pub String);

/// Status recorded for a dropped connection.
pub const DROPPED: u16 = 0;

/// Request counters.
#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<(String, u16, String), u64>>,
    /// Requests being served now (from arrival, added latency included, to the answer).
    in_flight: AtomicU64,
    /// The most requests in flight at once since the last reset.
    peak_in_flight: AtomicU64,
}

/// One request in flight; counted out when dropped (answered, failed or abandoned).
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Counters {
    /// Counts one request.
    pub fn record(&self, route: &str, status: u16, identity: &str) {
        if let Ok(mut c) = self.counts.lock() {
            *c.entry((route.to_owned(), status, identity.to_owned()))
                .or_default() += 1;
        }
    }

    /// Forgets every count; the peak starts again from the requests in flight now.
    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
        self.peak_in_flight
            .store(self.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Counts a request in until the returned guard is dropped.
    fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }

    /// The most requests in flight at once since the last reset.
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// Total requests counted for `route` (any status, any identity).
    pub fn count_route(&self, route: &str) -> u64 {
        self.counts
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|((r, _, _), _)| r == route)
                    .map(|(_, n)| n)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Everything, as the admin API shows it: the rows, and totals by route, status and
    /// identity.
    pub fn snapshot(&self) -> Value {
        let Ok(c) = self.counts.lock() else {
            return json!({});
        };
        let mut total = 0u64;
        let mut by_route: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_identity: BTreeMap<&str, u64> = BTreeMap::new();
        let mut rows = Vec::new();
        for ((route, status, identity), n) in c.iter() {
            total += n;
            *by_route.entry(route).or_default() += n;
            *by_status.entry(status.to_string()).or_default() += n;
            *by_identity.entry(identity).or_default() += n;
            rows.push(
                json!({ "route": route, "status": status, "identity": identity, "count": n }),
            );
        }
        json!({
            "total": total,
            "peakInFlight": self.peak_in_flight(),
            "byRoute": by_route,
            "byStatus": by_status,
            "byIdentity": by_identity,
            "requests": rows,
        })
    }
}

/// What the layer needs.
pub struct Observed {
    /// Fault rules.
    pub faults: Arc<Faults>,
    /// Counters.
    pub counters: Arc<Counters>,
}

/// The middleware: faults first, then the handler, then the count.
pub async fn layer(State(obs): State<Arc<Observed>>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let route = format!("{method} {path}");
    let _in_flight = obs.counters.enter();
    let (latency, decision) = obs.faults.decide(&method, &path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let resp = match decision {
        Decision::Pass => next.run(req).await,
        Decision::Error(status) => injected_error(status),
        Decision::Throttle(secs) => throttled(secs),
        Decision::Drop => {
            obs.counters.record(&route, DROPPED, "-");
            return dropped();
        }
    };
    let identity = resp
        .extensions()
        .get::<CallerTag>()
        .map(|t| t.0.clone())
        .unwrap_or_else(|| "-".to_owned());
    obs.counters
        .record(&route, resp.status().as_u16(), &identity);
    resp
}

/// An injected failure, with the error code the status stands for (`InternalServerError` for
/// 500, `ServiceUnavailable` for 503, …), so a client reports what it got.
fn injected_error(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let code: String = status
        .canonical_reason()
        .unwrap_or("Error")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .collect();
    kv_error(
        status,
        &code,
        "The keyvol dev vault injected this failure (fault rule).",
        None,
    )
}

/// The service's 429 body with `Retry-After`.
pub fn throttled(retry_after_secs: u64) -> Response {
    let mut resp = kv_error(
        StatusCode::TOO_MANY_REQUESTS,
        "Throttled",
        "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// A response whose body fails at once, so the server aborts the connection mid-answer.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "connection dropped by a fault rule",
        ))
    });
    (StatusCode::OK, Body::from_stream(stream)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_in_flight_counts_requests_served_together() {
        let c = Counters::default();
        let a = c.enter();
        let b = c.enter();
        drop(a);
        let d = c.enter();
        assert_eq!(c.peak_in_flight(), 2);
        drop((b, d));
        c.reset();
        assert_eq!(c.snapshot()["peakInFlight"], 0, "a reset starts again");
        let _e = c.enter();
        assert_eq!(c.peak_in_flight(), 1);
    }

    #[tokio::test]
    async fn injected_errors_carry_the_code_of_their_status() {
        for (status, code) in [
            (500, "InternalServerError"),
            (502, "BadGateway"),
            (503, "ServiceUnavailable"),
            (504, "GatewayTimeout"),
            (400, "BadRequest"),
        ] {
            let resp = injected_error(status);
            assert_eq!(resp.status().as_u16(), status);
            let body = axum::body::to_bytes(resp.into_body(), 4096)
                .await
                .expect("body");
            let v: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(v["error"]["code"], code);
        }
    }

    #[test]
    fn counts_add_up_by_route_status_and_identity() {
        let c = Counters::default();
        c.record("GET /secrets/{name}", 200, "app");
        c.record("GET /secrets/{name}", 200, "app");
        c.record("GET /secrets/{name}", 401, "-");
        c.record("POST /keys/{name}/create", 200, "app");
        let s = c.snapshot();
        assert_eq!(s["total"], 4);
        assert_eq!(s["byRoute"]["GET /secrets/{name}"], 3);
        assert_eq!(s["byStatus"]["200"], 3);
        assert_eq!(s["byIdentity"]["app"], 3);
        assert_eq!(c.count_route("POST /keys/{name}/create"), 1);
        c.reset();
        assert_eq!(c.snapshot()["total"], 0);
    }
}
