//! Liveness for load balancers and orchestrators, without a token.

use super::filters::{with_state, Route};
use crate::app::AppState;
use std::sync::Arc;
use warp::{Filter, Reply};

/// `GET /healthz`: up, and how far the library is (items, pending probes,
/// files settling, whether the disk was compared, how changes are seen),
/// and whether the catalogue database answers. Always 200 while the
/// process serves: without the database, known items still play; then
/// `status` is `degraded` and `database.reachable` false.
pub fn healthz(state: Arc<AppState>) -> Route {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .then(|state: Arc<AppState>| async move {
            let f = state.library.figures();
            let catalogue = state.library.catalogue();
            let kind = if catalogue.is_shared() {
                "postgres"
            } else {
                "sqlite"
            };
            let reachable = tokio::task::spawn_blocking(move || catalogue.ping().is_ok())
                .await
                .unwrap_or(false);
            warp::reply::json(&serde_json::json!({
                "status": if reachable { "ok" } else { "degraded" },
                "database": { "kind": kind, "reachable": reachable },
                "library": {
                    "items": f.items,
                    "pending": f.pending,
                    "settling": f.settling,
                    "reconciled": f.reconciled,
                    "watch": f.watch,
                },
            }))
            .into_response()
        })
        .boxed()
}
