//! Liveness for load balancers and orchestrators, without a token.

use super::filters::{with_state, Route};
use crate::app::AppState;
use std::sync::Arc;
use warp::{Filter, Reply};

/// `GET /healthz`: up, and how far the library is (items, pending probes,
/// files settling, whether the disk was compared, how changes are seen).
pub fn healthz(state: Arc<AppState>) -> Route {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: Arc<AppState>| {
            let f = state.library.figures();
            warp::reply::json(&serde_json::json!({
                "status": "ok",
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
