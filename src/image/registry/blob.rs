//! One blob from the registry into the store: streamed to `ingest/sha256-<hex>.partial` while
//! hashed, resumed with `Range` from what an interrupted download left, verified over the
//! whole file, renamed into `blobs/` only when the digest matches.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::Digest as _;

use crate::error::SysError;
use crate::image::reference::Digest;

use super::Progress;
use super::cancel;
use super::client::{Client, header};
use super::error::PullError;
use super::store::Store;

const CHUNK: usize = 256 * 1024;

fn io(op: &str, path: &Path, e: &std::io::Error) -> PullError {
    PullError::Store(SysError::io(op, Some(path.to_path_buf()), e))
}

/// Make sure blob `digest` of `size` bytes is in the store. `what` (`layer`, `config`) names it
/// in messages.
pub fn fetch(
    client: &mut Client,
    store: &Store,
    digest: &Digest,
    size: u64,
    what: &str,
    progress: &mut dyn Progress,
) -> Result<(), PullError> {
    if store.has_blob(digest, size) {
        progress.blob_done(digest, size, true);
        return Ok(());
    }
    let _lock = store.lock_blob(digest)?;
    // Another pull may have finished it while we waited for the lock.
    if store.has_blob(digest, size) {
        progress.blob_done(digest, size, true);
        return Ok(());
    }
    let partial = store.partial_path(digest);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial)
        .map_err(|e| io("open", &partial, &e))?;
    let mut have = file
        .metadata()
        .map_err(|e| io("fstat", &partial, &e))?
        .len();
    let mut hasher = sha2::Sha256::new();
    if have > size {
        truncate(&mut file, &partial)?;
        have = 0;
    } else if have > 0 {
        hash_prefix(&mut file, &partial, &mut hasher)?;
    }
    progress.blob_start(digest, size, have);
    if have < size {
        download(
            client,
            &mut file,
            &partial,
            digest,
            size,
            what,
            &mut have,
            &mut hasher,
            progress,
        )?;
    }
    let actual = Digest::from_hasher(hasher);
    if actual != *digest {
        // Bad bytes are no base for a resume: remove them.
        drop(file);
        let _ = std::fs::remove_file(&partial);
        return Err(PullError::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    file.sync_all().map_err(|e| io("fsync", &partial, &e))?;
    drop(file);
    store.commit(&partial, digest)?;
    progress.blob_done(digest, size, false);
    Ok(())
}

fn truncate(file: &mut File, path: &Path) -> Result<(), PullError> {
    file.set_len(0).map_err(|e| io("ftruncate", path, &e))?;
    file.seek(SeekFrom::Start(0))
        .map(|_| ())
        .map_err(|e| io("lseek", path, &e))
}

/// Hash what a previous download left (and leave the file offset at its end).
fn hash_prefix(file: &mut File, path: &Path, hasher: &mut sha2::Sha256) -> Result<(), PullError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io("lseek", path, &e))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(|e| io("read", path, &e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

#[allow(clippy::too_many_arguments)]
fn download(
    client: &mut Client,
    file: &mut File,
    partial: &Path,
    digest: &Digest,
    size: u64,
    what: &str,
    have: &mut u64,
    hasher: &mut sha2::Sha256,
    progress: &mut dyn Progress,
) -> Result<(), PullError> {
    let url = client.url(&format!("blobs/{digest}"));
    let mut headers = Vec::new();
    if *have > 0 {
        headers.push(("Range", format!("bytes={have}-")));
    }
    let reply = client.get(&url, &headers)?;
    let status = reply.response.status().as_u16();
    let from_url = reply.url.clone();
    match status {
        206 => {
            let range = header(&reply.response, "content-range").unwrap_or_default();
            if !range.starts_with(&format!("bytes {have}-")) {
                return Err(PullError::Status {
                    url: from_url,
                    status,
                    message: format!("asked for bytes {have}-, got range `{range}`"),
                });
            }
        }
        200 => {
            // The server ignored the Range (or there was none): start over.
            if *have > 0 {
                truncate(file, partial)?;
                *hasher = sha2::Sha256::new();
                *have = 0;
                progress.blob_start(digest, size, 0);
            }
        }
        404 => {
            return Err(PullError::Status {
                url: from_url,
                status,
                message: format!("{what} {digest} is not in the registry (BLOB_UNKNOWN)"),
            });
        }
        _ => {
            let message = super::client::error_message(reply.response);
            return Err(PullError::Status {
                url: from_url,
                status,
                message,
            });
        }
    }
    let expected = size - *have;
    if let Some(len) = reply.response.body().content_length() {
        if len != expected {
            return Err(PullError::Size {
                what: what.to_string(),
                digest: digest.to_string(),
                expected: size,
                actual: *have + len,
            });
        }
    }
    let mut body = reply.response.into_body().into_reader();
    let mut buf = vec![0u8; CHUNK];
    loop {
        if let Some(signal) = cancel::requested() {
            return Err(PullError::Cancelled { signal });
        }
        let n = match body.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                if let Some(signal) = cancel::requested() {
                    return Err(PullError::Cancelled { signal });
                }
                return Err(PullError::Interrupted {
                    what: format!("{what} {digest}"),
                    url: from_url,
                    done: *have,
                    total: size,
                    detail: e.to_string(),
                });
            }
        };
        if n == 0 {
            break;
        }
        if *have + n as u64 > size {
            drop(body);
            let _ = std::fs::remove_file(partial);
            return Err(PullError::Size {
                what: what.to_string(),
                digest: digest.to_string(),
                expected: size,
                actual: *have + n as u64,
            });
        }
        file.write_all(&buf[..n])
            .map_err(|e| io("write", partial, &e))?;
        hasher.update(&buf[..n]);
        *have += n as u64;
        progress.blob_progress(digest, *have, size);
    }
    if *have < size {
        return Err(PullError::Interrupted {
            what: format!("{what} {digest}"),
            url: from_url,
            done: *have,
            total: size,
            detail: "the connection closed early".to_string(),
        });
    }
    Ok(())
}
