//! A subscription to shard channels (`SSUBSCRIBE`) on one Redis or one
//! cluster node, on a connection of its own.
//!
//! The scripts push every entry they add to a live stream on the shard
//! channel named like the stream (`live_prelude.lua`), and each server
//! subscribes once for all its browsers: Redis hands each change to every
//! server as it happens, so the live feed costs Redis no reads per change,
//! however many servers follow it (see the server's `feed::relay`).
//!
//! redis-rs subscribes to shard channels only through a cluster client, so
//! this speaks the little of RESP2 a subscription needs: `AUTH`, `SSUBSCRIBE`,
//! `PING`, and the replies and messages they bring.

use std::time::Duration;

use crate::RedisTarget;
use redis::{ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError, RedisResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long connecting, authenticating and subscribing may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);

/// What a subscription hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A message pushed on one of its channels.
    Message { channel: String, payload: Vec<u8> },
    /// Nothing for a while (see [`Subscription::next_within`]).
    Quiet,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection subscribed to some shard channels.
pub struct Subscription {
    io: Box<dyn Io>,
    /// Bytes read but not yet parsed.
    buffer: Vec<u8>,
    /// Whether it asked Redis for a pong that has not come yet.
    pinged: bool,
}

impl Subscription {
    /// Connects to the Redis at `url` and subscribes to `channels`,
    /// returning once Redis has confirmed every one: whatever is pushed
    /// after that reaches this subscription. A Redis without shard channels
    /// (older than 7) answers an error for which [`is_unsupported`] holds.
    pub async fn open(url: &str, channels: &[String]) -> RedisResult<Subscription> {
        tokio::time::timeout(OPEN_TIMEOUT, Self::open_now(url, channels))
            .await
            .map_err(|_| RedisError::from((ErrorKind::Io, "subscribing timed out")))?
    }

    async fn open_now(url: &str, channels: &[String]) -> RedisResult<Subscription> {
        let info = url.into_connection_info()?;
        let io: Box<dyn Io> = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let stream = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            _ => return Err(RedisError::from((ErrorKind::InvalidClientConfig, "shard channels over TLS"))),
        };
        let mut subscription = Subscription { io, buffer: Vec::with_capacity(4096), pinged: false };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = vec!["AUTH".as_bytes()];
            if let Some(user) = settings.username() {
                auth.push(user.as_bytes());
            }
            auth.push(password.as_bytes());
            subscription.send(&auth).await?;
            if let Frame::Error(error) = subscription.frame().await? {
                return Err(server_error(&error));
            }
        }
        let mut command = vec!["SSUBSCRIBE".as_bytes()];
        command.extend(channels.iter().map(|channel| channel.as_bytes()));
        subscription.send(&command).await?;
        for _ in channels {
            match subscription.frame().await? {
                Frame::Array(items) if word(items.first()) == Some("ssubscribe") => {}
                Frame::Error(error) => return Err(server_error(&error)),
                other => return Err(unexpected(&other)),
            }
        }
        Ok(subscription)
    }

    /// Subscribes to `channels` where their pushes are heard: on the Redis,
    /// or on a cluster on the master serving their hash slot (they must
    /// share one, as the streams of one partition do). When that slot
    /// moves, Redis ends the subscription (see [`Subscription::next_within`])
    /// and the next `open_on` finds its new master.
    pub async fn open_on(target: &RedisTarget, channels: &[String]) -> RedisResult<Subscription> {
        match target {
            RedisTarget::Single(url) => Self::open(url, channels).await,
            // Refused at once, without asking the seeds (see `open_now`).
            RedisTarget::Cluster(seeds) if seeds.iter().any(|seed| seed.starts_with("rediss:")) => {
                Self::open(&seeds[0], channels).await
            }
            RedisTarget::Cluster(seeds) => {
                let url = crate::cluster::master_url_of(seeds, channels.first().map_or("", String::as_str)).await?;
                Self::open(&url, channels).await
            }
        }
    }

    /// The next message, or [`Heard::Quiet`] after `quiet` without one.
    /// Each quiet spell it pings Redis, and it fails when the pong has not
    /// come by the next: a connection silently cut (Redis's host gone or
    /// paused) is told from a quiet one. An error when the connection is lost.
    pub async fn next_within(&mut self, quiet: Duration) -> RedisResult<Heard> {
        loop {
            let frame = match tokio::time::timeout(quiet, self.frame()).await {
                Ok(frame) => frame?,
                Err(_) if self.pinged => {
                    return Err(RedisError::from((ErrorKind::Io, "Redis did not answer a ping on the subscription")));
                }
                Err(_) => {
                    tokio::time::timeout(quiet, self.send(&[b"PING"]))
                        .await
                        .map_err(|_| RedisError::from((ErrorKind::Io, "pinging Redis timed out")))??;
                    self.pinged = true;
                    return Ok(Heard::Quiet);
                }
            };
            match frame {
                Frame::Array(mut items) => match word(items.first()) {
                    Some("smessage") if items.len() == 3 => {
                        let (Frame::Bulk(payload), Frame::Bulk(channel)) = (items.remove(2), items.remove(1)) else {
                            continue;
                        };
                        let channel = String::from_utf8_lossy(&channel).into_owned();
                        return Ok(Heard::Message { channel, payload });
                    }
                    Some("pong") => self.pinged = false,
                    // A shard channel's slot moved away (`sunsubscribe` from the server):
                    // the subscription no longer hears all of it.
                    Some("sunsubscribe") => {
                        return Err(RedisError::from((ErrorKind::Io, "Redis ended the subscription")));
                    }
                    _ => {}
                },
                Frame::Error(error) => return Err(server_error(&error)),
                _ => {}
            }
        }
    }

    async fn send(&mut self, args: &[&[u8]]) -> RedisResult<()> {
        let mut packed = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            packed.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            packed.extend_from_slice(arg);
            packed.extend_from_slice(b"\r\n");
        }
        self.io.write_all(&packed).await?;
        Ok(())
    }

    /// The next whole frame, reading as much as it takes.
    async fn frame(&mut self) -> RedisResult<Frame> {
        loop {
            match parse(&self.buffer).map_err(|problem| RedisError::from((ErrorKind::Parse, "RESP", problem)))? {
                Some((frame, used)) => {
                    self.buffer.drain(..used);
                    return Ok(frame);
                }
                None => {
                    let mut chunk = [0u8; 16 * 1024];
                    let read = self.io.read(&mut chunk).await?;
                    if read == 0 {
                        return Err(RedisError::from((ErrorKind::Io, "Redis closed the subscription")));
                    }
                    self.buffer.extend_from_slice(&chunk[..read]);
                }
            }
        }
    }
}

/// Whether `error` says the Redis has no shard channels (older than 7), so
/// a server must read the live streams instead.
pub fn is_unsupported(error: &RedisError) -> bool {
    let text = error.to_string();
    text.contains("unknown command") || text.contains("shard channels over TLS")
}

/// A RESP2 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    /// A bulk string; a nil one is empty.
    Bulk(Vec<u8>),
    /// An array; a nil one is empty.
    Array(Vec<Frame>),
}

/// The text of a frame that is a word (`ssubscribe`, `smessage`, `pong`).
fn word(frame: Option<&Frame>) -> Option<&str> {
    match frame? {
        Frame::Bulk(bytes) => std::str::from_utf8(bytes).ok(),
        Frame::Simple(text) => Some(text),
        _ => None,
    }
}

fn server_error(text: &str) -> RedisError {
    RedisError::from((ErrorKind::Client, "Redis refused", text.to_string()))
}

fn unexpected(frame: &Frame) -> RedisError {
    RedisError::from((ErrorKind::Parse, "unexpected reply to SSUBSCRIBE", format!("{frame:?}")))
}

/// The first frame in `bytes` and how many bytes it took; `None` while it
/// is incomplete.
fn parse(bytes: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let Some(end) = bytes.windows(2).position(|pair| pair == b"\r\n") else {
        return Ok(None);
    };
    let (kind, line) = match bytes.split_first() {
        Some((kind, _)) => (*kind, std::str::from_utf8(&bytes[1..end]).map_err(|e| e.to_string())?),
        None => return Ok(None),
    };
    let after = end + 2;
    let number = || line.parse::<i64>().map_err(|_| format!("not a number: {line:?}"));
    match kind {
        b'+' => Ok(Some((Frame::Simple(line.to_string()), after))),
        b'-' => Ok(Some((Frame::Error(line.to_string()), after))),
        b':' => Ok(Some((Frame::Integer(number()?), after))),
        b'$' => {
            let Ok(length) = usize::try_from(number()?) else {
                return Ok(Some((Frame::Bulk(Vec::new()), after)));
            };
            if bytes.len() < after + length + 2 {
                return Ok(None);
            }
            Ok(Some((Frame::Bulk(bytes[after..after + length].to_vec()), after + length + 2)))
        }
        b'*' => {
            let Ok(count) = usize::try_from(number()?) else {
                return Ok(Some((Frame::Array(Vec::new()), after)));
            };
            let mut items = Vec::with_capacity(count.min(64));
            let mut at = after;
            for _ in 0..count {
                match parse(&bytes[at..])? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((Frame::Array(items), at)))
        }
        other => Err(format!("unknown RESP2 type {:?}", other as char)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_whole_or_wait_for_more() {
        let message = b"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        let (frame, used) = parse(message).unwrap().unwrap();
        assert_eq!(used, message.len());
        assert_eq!(
            frame,
            Frame::Array(vec![
                Frame::Bulk(b"smessage".to_vec()),
                Frame::Bulk(b"ch".to_vec()),
                Frame::Bulk(b"hello".to_vec())
            ])
        );
        for cut in 0..message.len() {
            assert_eq!(parse(&message[..cut]).unwrap(), None, "cut at {cut}");
        }
        let two = [&b":3\r\n"[..], b"+PONG\r\n"].concat();
        assert_eq!(parse(&two).unwrap(), Some((Frame::Integer(3), 4)));
        assert_eq!(parse(b"-ERR unknown command\r\n").unwrap(), Some((Frame::Error("ERR unknown command".into()), 22)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Frame::Bulk(Vec::new()), 5)));
        assert!(parse(b"?\r\n").is_err());
    }
}
