//! Files in R2 (binding `FILES`): an upload is streamed from the request body to R2 chunk by
//! chunk, never held whole in wasm memory, with its SHA-256 computed on the way; R2 accepts a
//! stream only of a length known in advance (`FixedLengthStream`), and stores nothing when the
//! stream ends short or fails.

use crate::timing::Meter;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{web_sys, ByteStream, Env, FixedLengthStream, HttpMetadata};

pub const BINDING: &str = "FILES";

#[derive(Debug)]
pub enum Error {
    /// The body ended before (or went past) the length declared, or the client went away.
    Incomplete(String),
    /// R2 (or its binding) failed.
    R2(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Incomplete(why) => write!(f, "upload incomplete: {why}"),
            Error::R2(why) => write!(f, "R2: {why}"),
        }
    }
}

/// A file as stored: its size and SHA-256 (hex).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub size: u64,
    pub sha256: String,
}

/// Streams `body` (exactly `length` bytes) to R2 under `key` with `content_type`.
pub async fn put(env: &Env, meter: &Meter, key: &str, body: web_sys::ReadableStream, length: u64, content_type: &str) -> Result<Stored, Error> {
    let bucket = env.bucket(BINDING).map_err(|e| Error::R2(e.to_string()))?;
    let hasher = Rc::new(RefCell::new((Sha256::new(), 0u64)));
    let seen = hasher.clone();
    let chunks = ByteStream::from(body).map(move |chunk| {
        let chunk = chunk?;
        let mut state = seen.borrow_mut();
        state.0.update(&chunk);
        state.1 += chunk.len() as u64;
        Ok(chunk)
    });
    let metadata = HttpMetadata { content_type: Some(content_type.to_owned()), ..Default::default() };
    let put = bucket.put(key, FixedLengthStream::wrap(chunks, length)).http_metadata(metadata).execute();
    let stored = meter.time(put).await;
    let (digest, received) = {
        let state = hasher.borrow();
        (state.0.clone().finalize(), state.1)
    };
    match stored {
        Ok(Some(_)) if received == length => Ok(Stored { size: length, sha256: hex::encode(digest) }),
        Ok(_) => Err(Error::Incomplete(format!("{received} of {length} bytes"))),
        Err(e) if received != length => Err(Error::Incomplete(format!("{received} of {length} bytes: {e}"))),
        Err(e) => Err(Error::R2(e.to_string())),
    }
}

/// Deletes the object under `key` (nothing when there is none).
pub async fn delete(env: &Env, meter: &Meter, key: &str) -> Result<(), Error> {
    let bucket = env.bucket(BINDING).map_err(|e| Error::R2(e.to_string()))?;
    meter.time(bucket.delete(key)).await.map_err(|e| Error::R2(e.to_string()))
}
