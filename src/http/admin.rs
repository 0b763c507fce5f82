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

/// What `/api/v1/admin/streaming-stats` returns: this node's figures
/// and, with a shared database, every other live node's.
#[derive(Serialize)]
struct AdminStats {
    #[serde(flatten)]
    node: crate::app::NodeFigures,
    /// The other live nodes of the cluster, as they published themselves
    /// within the last 15 s (absent without a shared database).
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<Vec<crate::cluster::NodeReport>>,
    /// Why the other nodes are not listed: the database did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_error: Option<String>,
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
        .then(|p: Principal, state: Arc<AppState>| async move {
            if let Err(e) = require_admin(&state, &p) {
                return respond(Err(e));
            }
            let catalogue = state.library.catalogue();
            let (mut cluster, mut cluster_error) = (None, None);
            if catalogue.is_shared() {
                match crate::cluster::nodes_elsewhere(&catalogue, &state.http.node_name).await {
                    Ok(nodes) => cluster = Some(nodes),
                    Err(e) => cluster_error = Some(e.to_string()),
                }
            }
            let stats = AdminStats {
                node: state.figures(),
                cluster,
                cluster_error,
            };
            respond(Ok(warp::reply::json(&stats).into_response()))
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
                state.refresh_gauges();
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
