//! The URLs a session hands out and the playback tokens in them
//! ([`crate::token`]): the master playlist's signed, item-scoped URL, and
//! the token of each player, which names the user, the item, the session
//! and the player, so the account's token never travels in a playlist and
//! an HTTP cache can key segments on the path alone.

use super::error::ApiError;
use super::filters::query_value;
use crate::app::AppState;
use crate::session::Session;
use crate::token::{now_unix_s, Grant, TokenError};
use uuid::Uuid;

/// The master playlist's URL: signed and scoped to the item,
/// `/api/v1/hls/media/{media_id}/master.m3u8?token=...&audio=...` (player
/// 0 of `session`, then the tracks, start and profile it was asked with),
/// so a player needs no account token to fetch it, a load balancer can
/// route it by media id, and any node sharing `--secret` can answer it,
/// opening the same session if it has none.
pub fn master_url(state: &AppState, session: &Session) -> String {
    let token = player_token(state, session, 0);
    let request = match session.request.as_str() {
        "" => String::new(),
        q => format!("&{q}"),
    };
    format!(
        "/api/v1/hls/media/{}/master.m3u8?token={token}{request}",
        session.media_id
    )
}

/// The playback token of `player` of `session`, expiring `--token-ttl`
/// plus twice the item's duration from now, so a viewer who pauses can
/// still finish.
pub fn player_token(state: &AppState, session: &Session, player: u32) -> String {
    let duration_s = session.duration().map_or(0, |d| d.as_secs());
    state.signer.sign(&Grant {
        user: session.user.clone(),
        media_id: session.media_id,
        session_id: session.id,
        player,
        expires_unix_s: now_unix_s() + state.http.token_ttl.as_secs() + 2 * duration_s,
    })
}

/// The grant of the playback token in `query`, if it is good for item
/// `media_id`.
///
/// # Errors
/// 401 without a token; 403 for a bad or expired one, or one for another
/// item.
pub fn grant_for(state: &AppState, media_id: &str, query: &str) -> Result<Grant, ApiError> {
    let token = query_value(query, "token").ok_or(ApiError::Unauthorized)?;
    let grant = state
        .signer
        .verify(&token, now_unix_s())
        .map_err(ApiError::Token)?;
    if Uuid::parse_str(media_id).ok() != Some(grant.media_id) {
        return Err(ApiError::Token(TokenError::Invalid));
    }
    Ok(grant)
}
