//! The signing secret a node keeps in its data dir, so that the playback
//! URLs it signed ([`crate::token`]) outlive a restart: systemd restarting
//! hlsd after a crash or an upgrade costs no viewer a 403.
//!
//! Used when no `--secret` is given. The file ([`FILE_NAME`] in
//! `--data-dir`) holds 32 random bytes as base64url text and is made once,
//! readable by its owner only (mode 0600). A file that others can read, or
//! that does not hold such a secret, is refused with a message that says
//! what to do rather than replaced: replacing it would end every playback
//! URL in use.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The secret's file name in the data dir.
pub const FILE_NAME: &str = "signing-secret";

/// Bytes of secret a new file holds (HMAC-SHA256's block wants no more;
/// RFC 2104 §3 asks for at least the hash's 32).
const SECRET_BYTES: usize = 32;

/// Why the kept secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Other users may read the file.
    #[error(
        "{path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`, or pass --secret"
    )]
    Readable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file holds no secret hlsd wrote.
    #[error(
        "{path} does not hold a signing secret: delete it to make a new one (playback URLs signed with the old one then end)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The secret kept in `data_dir`, made there first if there is none.
///
/// # Errors
/// [`SecretError::Readable`] when group or others may read the file,
/// [`SecretError::Malformed`] when it does not hold at least 32 bytes of
/// base64url, [`SecretError::Io`] when it cannot be read or made.
pub fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, SecretError> {
    let path = data_dir.join(FILE_NAME);
    let io = |source| SecretError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::symlink_metadata(&path) {
        Ok(_) => read(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = crate::token::random_key(SECRET_BYTES);
            // Written aside, then linked into place: a node starting beside
            // this one on the same data dir either links first or reads
            // what the other linked.
            let aside = data_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
            let written = write_aside(&aside, &secret).map_err(io);
            let linked = written.and_then(|()| match std::fs::hard_link(&aside, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    // A file system without hard links: moved into place.
                    std::fs::rename(&aside, &path).map_err(io)
                }
                other => other.map_err(io),
            });
            let _ = std::fs::remove_file(&aside);
            match linked {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "made the signing secret; playback URLs now outlive a restart");
                    Ok(secret)
                }
                Err(SecretError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    read(&path)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(io(e)),
    }
}

/// Writes `secret` to a new file at `at`, mode 0600, and syncs it.
fn write_aside(at: &Path, secret: &[u8]) -> std::io::Result<()> {
    let _ = std::fs::remove_file(at);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(at)?;
    f.write_all(URL_SAFE_NO_PAD.encode(secret).as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

/// Reads the kept secret at `path`, refusing a file others may read.
fn read(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Readable {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    match URL_SAFE_NO_PAD.decode(text.trim()) {
        Ok(secret) if secret.len() >= SECRET_BYTES => Ok(secret),
        _ => Err(SecretError::Malformed {
            path: path.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_secret_is_made_once_owner_only_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), SECRET_BYTES);
        let path = dir.path().join(FILE_NAME);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(load_or_create(dir.path()).unwrap(), first);
        // Nothing left aside.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Another data dir, another secret.
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first);
    }

    #[test]
    fn a_file_others_can_read_or_that_holds_no_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = load_or_create(dir.path()).unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(
            matches!(e, SecretError::Readable { mode: 0o644, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"), "{e}");
        // Still there, untouched.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(load_or_create(dir.path()).unwrap(), secret);
        std::fs::write(&path, "short\n").unwrap();
        let e = load_or_create(dir.path()).unwrap_err();
        assert!(matches!(e, SecretError::Malformed { .. }), "{e}");
    }
}
