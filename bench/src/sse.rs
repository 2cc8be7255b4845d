//! A minimal server-sent-events client over a raw TCP socket: one request,
//! the response head, a chunked-transfer decoder and the `data:` lines. Ten
//! thousand of them must cost the bench little CPU and memory, so there is no
//! HTTP library underneath, only a small buffer per connection.

use std::net::SocketAddr;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One `GET /api/events` stream.
pub struct SseClient {
    stream: TcpStream,
    raw: BytesMut,
    decoder: Decoder,
}

impl SseClient {
    /// Connects and reads the response head. `abortive` closes with a reset
    /// instead of FIN, so thousands of closed clients leave no TIME_WAIT
    /// sockets holding loopback ports.
    pub async fn connect(addr: SocketAddr, host: &str, abortive: bool) -> Result<SseClient> {
        let mut stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        if abortive {
            stream.set_zero_linger()?;
        }
        let request = format!(
            "GET /api/events HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut raw = BytesMut::with_capacity(4096);
        let head_len = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end + 4;
            }
            if raw.len() > MAX_HEAD {
                bail!("GET /api/events: response head over {MAX_HEAD} bytes");
            }
            if stream.read_buf(&mut raw).await? == 0 {
                bail!("GET /api/events: the server closed the connection before answering");
            }
        };
        let chunked = parse_head(&raw[..head_len])?;
        raw.advance(head_len);
        let mut decoder = Decoder::new(chunked);
        decoder.feed(&mut raw);
        Ok(SseClient { stream, raw, decoder })
    }

    /// Waits for the next event; `false` when the stream ended.
    pub async fn next(&mut self) -> Result<bool> {
        loop {
            if self.decoder.next_event() {
                return Ok(true);
            }
            if self.decoder.ended {
                return Ok(false);
            }
            if self.raw.capacity() - self.raw.len() < 1024 {
                self.raw.reserve(4096);
            }
            if self.stream.read_buf(&mut self.raw).await? == 0 {
                return Ok(false);
            }
            self.decoder.feed(&mut self.raw);
        }
    }

    /// The `data` of the last event.
    pub fn data(&self) -> &[u8] {
        &self.decoder.data
    }
}

/// The status line must say 200; returns whether the body is chunked.
fn parse_head(head: &[u8]) -> Result<bool> {
    let text = std::str::from_utf8(head).context("response head is not text")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        bail!("GET /api/events answered {status_line:?}");
    }
    let chunked = lines.filter_map(|line| line.split_once(':')).any(|(name, value)| {
        name.trim().eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked")
    });
    Ok(chunked)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Chunk {
    /// Expecting a size line.
    Size,
    /// This many bytes of chunk data to go.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last chunk came.
    Done,
}

/// Transfer decoding and event framing, apart from the socket (so it can be tested).
struct Decoder {
    chunked: bool,
    chunk: Chunk,
    /// Decoded body bytes not yet framed into events.
    body: Vec<u8>,
    /// The data of the last event.
    data: Vec<u8>,
    ended: bool,
}

impl Decoder {
    fn new(chunked: bool) -> Decoder {
        Decoder { chunked, chunk: Chunk::Size, body: Vec::with_capacity(1024), data: Vec::new(), ended: false }
    }

    /// Moves what `raw` holds into the decoded body, leaving an incomplete chunk header in `raw`.
    fn feed(&mut self, raw: &mut BytesMut) {
        if !self.chunked {
            self.body.extend_from_slice(raw);
            raw.clear();
            return;
        }
        loop {
            match self.chunk {
                Chunk::Size => {
                    let Some(end) = find(raw, b"\r\n") else { break };
                    let line = std::str::from_utf8(&raw[..end]).unwrap_or("");
                    let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
                    raw.advance(end + 2);
                    self.chunk = if size == 0 { Chunk::Done } else { Chunk::Data(size) };
                }
                Chunk::Data(left) => {
                    let take = left.min(raw.len());
                    if take == 0 {
                        break;
                    }
                    self.body.extend_from_slice(&raw[..take]);
                    raw.advance(take);
                    self.chunk = if take == left { Chunk::DataEnd } else { Chunk::Data(left - take) };
                }
                Chunk::DataEnd => {
                    if raw.len() < 2 {
                        break;
                    }
                    raw.advance(2);
                    self.chunk = Chunk::Size;
                }
                Chunk::Done => {
                    self.ended = true;
                    raw.clear();
                    break;
                }
            }
        }
    }

    /// Frames the next event with data out of the body into `data`.
    fn next_event(&mut self) -> bool {
        self.data.clear();
        let mut pos = 0;
        let (mut has_data, mut typed) = (false, false);
        while let Some(len) = self.body[pos..].iter().position(|&b| b == b'\n') {
            let line = &self.body[pos..pos + len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            pos += len + 1;
            if line.is_empty() {
                if has_data && !typed {
                    self.body.drain(..pos);
                    return true;
                }
                // A comment (keep-alive), an event without data or one of a
                // type of its own (`subscribed`, `reload`): skip it.
                self.body.drain(..pos);
                self.data.clear();
                (pos, has_data, typed) = (0, false, false);
                continue;
            }
            if line.starts_with(b"event:") {
                typed = true;
            } else if let Some(value) = line.strip_prefix(b"data:") {
                if has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
                has_data = true;
            }
        }
        self.data.clear();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(decoder: &mut Decoder) -> Vec<String> {
        let mut out = Vec::new();
        while decoder.next_event() {
            out.push(String::from_utf8(decoder.data.clone()).unwrap());
        }
        out
    }

    #[test]
    fn chunked_events_split_anywhere_come_out_whole() {
        let body = "event: subscribed\nid: a:0\ndata: {}\n\nid: a:1\ndata: {\"x\":1}\n\n:\n\nid: a:2\ndata: {\"x\":2}\ndata: more\n\n";
        // Two chunks, the boundary inside the second event.
        let (first, second) = body.split_at(30);
        let wire = format!("{:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n", first.len(), second.len());
        for split in 1..wire.len() {
            let mut decoder = Decoder::new(true);
            // Like the client's read buffer: what a read leaves undecoded waits for the next.
            let mut raw = BytesMut::new();
            let mut got = Vec::new();
            for piece in [&wire.as_bytes()[..split], &wire.as_bytes()[split..]] {
                raw.extend_from_slice(piece);
                decoder.feed(&mut raw);
                got.extend(events(&mut decoder));
            }
            assert_eq!(got, vec!["{\"x\":1}".to_string(), "{\"x\":2}\nmore".to_string()], "split at {split}");
            assert!(decoder.ended, "split at {split}");
        }
    }

    #[test]
    fn identity_bodies_and_crlf_lines_work_too() {
        let mut decoder = Decoder::new(false);
        let mut raw = BytesMut::from("data: one\r\n\r\ndata: tw");
        decoder.feed(&mut raw);
        assert_eq!(events(&mut decoder), vec!["one"]);
        let mut raw = BytesMut::from("o\n\n");
        decoder.feed(&mut raw);
        assert_eq!(events(&mut decoder), vec!["two"]);
    }

    #[test]
    fn only_a_200_is_a_stream() {
        assert!(parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap());
        assert!(!parse_head(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n").unwrap());
        assert!(parse_head(b"HTTP/1.1 503 Service Unavailable\r\n\r\n").is_err());
    }
}
