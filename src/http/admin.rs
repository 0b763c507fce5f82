//! Statistics for operators: `GET /api/v1/admin/streaming-stats` (JSON)
//! and `GET /metrics` (Prometheus text), admins only unless
//! `--metrics-public`.

use super::error::ApiError;
use super::filters::{respond, with_state, Principal, Route};
use crate::app::AppState;
use serde::Serialize;
use std::sync::Arc;
use warp::http::{header, HeaderValue};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// 403 unless `p` is an admin.
fn require_admin(state: &AppState, p: &Principal) -> Result<(), ApiError> {
    if state.is_admin(&p.user) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this needs an admin token (--admin)".into(),
        ))
    }
}

/// What `/api/v1/admin/streaming-stats` returns: the session statistics,
/// the segment store and the producers.
#[derive(Serialize)]
struct AdminStats {
    #[serde(flatten)]
    report: crate::stats::StatsReport,
    /// Segments, bytes, budget and evictions of the segment store.
    store: crate::store::StoreStats,
    /// Producer pipelines: `{kind: {phase: n}}`.
    producers:
        std::collections::BTreeMap<&'static str, std::collections::BTreeMap<&'static str, u64>>,
    /// Every producer: its item, renditions (the rungs being encoded) and
    /// place.
    producer_list: Vec<crate::supervisor::ProducerInfo>,
    /// Items, probes by outcome, scans, and how changes are noticed.
    library: crate::library::LibraryFigures,
}

/// Refreshes the gauges that are read from live state.
fn refresh_gauges(state: &AppState) -> Vec<(crate::library::Playback, &'static str)> {
    let sessions = state.sessions.snapshot();
    state.stats.set_active(&sessions);
    let store = state.sessions.supervisor().store().stats();
    state.stats.set_store(store.bytes, store.segments);
    let counts = state.sessions.supervisor().counts();
    let flat: Vec<(&str, &str, u64)> = counts
        .by_kind
        .iter()
        .flat_map(|(k, phases)| phases.iter().map(move |(p, n)| (*k, *p, *n)))
        .collect();
    state.stats.set_producers(&flat);
    state.stats.set_library(&state.library.figures());
    sessions
}

/// `GET /api/v1/admin/streaming-stats` (admins): sessions, the store,
/// producers and the library, as JSON.
pub fn streaming_stats(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    warp::path!("api" / "v1" / "admin" / "streaming-stats")
        .and(warp::get())
        .and(auth)
        .and(with_state(state))
        .map(|p: Principal, state: Arc<AppState>| {
            respond(require_admin(&state, &p).map(|_| {
                let sessions = refresh_gauges(&state);
                warp::reply::json(&AdminStats {
                    report: state.stats.report(&sessions),
                    store: state.sessions.supervisor().store().stats(),
                    producers: state.sessions.supervisor().counts().by_kind,
                    producer_list: state.sessions.supervisor().producers(),
                    library: state.library.figures(),
                })
                .into_response()
            }))
        })
        .boxed()
}

/// `GET /metrics`: Prometheus text; admins only unless `--metrics-public`.
pub fn metrics(
    state: Arc<AppState>,
    auth: impl Filter<Extract = (Principal,), Error = Rejection> + Clone + Send + Sync + 'static,
) -> Route {
    let public = state.http.metrics_public;
    warp::path!("metrics")
        .and(warp::get())
        .and(
            warp::any()
                .and_then(move || async move {
                    if public {
                        Ok::<_, Rejection>(None)
                    } else {
                        Err(warp::reject::custom(ApiError::Unauthorized))
                    }
                })
                .or(auth.map(Some))
                .unify(),
        )
        .and(with_state(state))
        .map(|p: Option<Principal>, state: Arc<AppState>| {
            let allowed = match &p {
                None => Ok(()),
                Some(p) => require_admin(&state, p),
            };
            respond(allowed.map(|_| {
                refresh_gauges(&state);
                let mut res = Response::new(state.stats.prometheus_text().into());
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }))
        })
        .boxed()
}
