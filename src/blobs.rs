//! Files in R2 (binding `FILES`): an upload is streamed from the request body to R2 chunk by
//! chunk, never held whole in wasm memory, with its SHA-256 computed on the way; R2 accepts a
//! stream only of a length known in advance (`FixedLengthStream`), and stores nothing when the
//! stream ends short or fails.

use crate::timing::Meter;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use worker::{web_sys, ByteStream, Env, FixedLengthStream, HttpMetadata, Range, ResponseBody};

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

/// What a body stream has delivered so far.
#[derive(Default)]
struct Seen {
    sha256: Sha256,
    bytes: u64,
    /// The client's body ended (or broke off: `ByteStream` reads an abort as the end).
    ended: bool,
    failed: bool,
}

/// A request body that hashes and counts what passes through it.
struct Hashing {
    inner: ByteStream,
    seen: Rc<RefCell<Seen>>,
}

impl Stream for Hashing {
    type Item = worker::Result<Vec<u8>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        let mut seen = self.seen.borrow_mut();
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                seen.sha256.update(chunk);
                seen.bytes += chunk.len() as u64;
            }
            Poll::Ready(Some(Err(_))) => seen.failed = true,
            Poll::Ready(None) => seen.ended = true,
            Poll::Pending => {}
        }
        polled
    }
}

/// Streams `body` (exactly `length` bytes) to R2 under `key` with `content_type`. A body that
/// ends short or breaks off is `Incomplete` (nothing is stored); R2 failing is `R2`.
pub async fn put(env: &Env, meter: &Meter, key: &str, body: web_sys::ReadableStream, length: u64, content_type: &str) -> Result<Stored, Error> {
    let bucket = env.bucket(BINDING).map_err(|e| Error::R2(e.to_string()))?;
    let seen = Rc::new(RefCell::new(Seen::default()));
    let chunks = Hashing { inner: ByteStream::from(body), seen: seen.clone() };
    let metadata = HttpMetadata { content_type: Some(content_type.to_owned()), ..Default::default() };
    let put = bucket.put(key, FixedLengthStream::wrap(chunks, length)).http_metadata(metadata).execute();
    let stored = meter.time(put).await;
    let seen = seen.take();
    let client_short = seen.failed || (seen.ended && seen.bytes != length);
    match stored {
        Ok(Some(_)) if seen.bytes == length => Ok(Stored { size: length, sha256: hex::encode(seen.sha256.finalize()) }),
        _ if client_short => Err(Error::Incomplete(format!("{} of {length} bytes", seen.bytes))),
        Ok(_) => Err(Error::R2(format!("put stored nothing after {} of {length} bytes", seen.bytes))),
        Err(e) => Err(Error::R2(e.to_string())),
    }
}

/// Deletes the object under `key` (nothing when there is none).
pub async fn delete(env: &Env, meter: &Meter, key: &str) -> Result<(), Error> {
    let bucket = env.bucket(BINDING).map_err(|e| Error::R2(e.to_string()))?;
    meter.time(bucket.delete(key)).await.map_err(|e| Error::R2(e.to_string()))
}

/// The object under `key` as a stream for a response (passed through, never copied into wasm),
/// whole or bytes `start..=end`; `None` when there is no such object.
pub async fn get(env: &Env, meter: &Meter, key: &str, part: Option<(u64, u64)>) -> Result<Option<web_sys::ReadableStream>, Error> {
    let bucket = env.bucket(BINDING).map_err(|e| Error::R2(e.to_string()))?;
    let mut get = bucket.get(key);
    if let Some((start, end)) = part {
        get = get.range(Range::OffsetWithLength { offset: start, length: end - start + 1 });
    }
    let Some(object) = meter.time(get.execute()).await.map_err(|e| Error::R2(e.to_string()))? else { return Ok(None) };
    let Some(body) = object.body() else { return Ok(None) };
    match body.response_body().map_err(|e| Error::R2(e.to_string()))? {
        ResponseBody::Stream(stream) => Ok(Some(stream)),
        _ => Err(Error::R2("R2 object without a stream body".into())),
    }
}
