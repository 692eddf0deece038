//! A TCP relay that delays every chunk by a fixed time in each direction, to
//! simulate a distant host where the kernel has no netem.
//!
//! Each chunk is held until its read time plus the delay, so the delay is not
//! cumulative, and chunks are written in the order they were read.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

const CHUNK_SIZE: usize = 16 * 1024;

/// Runs the relay until the process is killed, writing the bound address to `ready_file`.
pub fn run(
    listen: &str,
    target: &str,
    delay: Duration,
    ready_file: Option<&Path>,
) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("failed to listen on `{listen}`"))?;
        let bound = listener.local_addr()?;
        if let Some(path) = ready_file {
            std::fs::write(path, bound.to_string())
                .with_context(|| format!("failed to write `{}`", path.display()))?;
        }
        tracing::info!(%bound, target, delay_ms = delay.as_millis() as u64, "relay listening");
        serve(listener, target.to_owned(), delay).await
    })
}

/// Accepts connections on `listener` and relays each to `target` with `delay` each way.
pub async fn serve(listener: TcpListener, target: String, delay: Duration) -> anyhow::Result<i32> {
    loop {
        let (client, peer) = listener.accept().await?;
        let target = target.clone();
        tokio::spawn(async move {
            if let Err(error) = relay_connection(client, &target, delay).await {
                tracing::warn!(%peer, target, "relay connection failed: {error:#}");
            }
        });
    }
}

/// Relays one connection. The connection to `target` opens `delay` after the client
/// connected, as the opening would reach a distant server only after the one-way
/// delay, so a banner the server sends first reaches the client after two delays.
async fn relay_connection(client: TcpStream, target: &str, delay: Duration) -> anyhow::Result<()> {
    client.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (up_sender, up_receiver) = mpsc::unbounded_channel();
    let up_reader = tokio::spawn(read_chunks(client_read, up_sender, delay));

    tokio::time::sleep(delay).await;
    let server = TcpStream::connect(target)
        .await
        .with_context(|| format!("failed to connect to `{target}`"))?;
    server.set_nodelay(true)?;
    let (server_read, server_write) = server.into_split();
    let up_writer = tokio::spawn(write_chunks(up_receiver, server_write));

    let (down_sender, down_receiver) = mpsc::unbounded_channel();
    let down_reader = tokio::spawn(read_chunks(server_read, down_sender, delay));
    let down_writer = tokio::spawn(write_chunks(down_receiver, client_write));

    let (up_read, up_written, down_read, down_written) =
        tokio::join!(up_reader, up_writer, down_reader, down_writer);
    up_read?;
    down_read?;
    up_written??;
    down_written??;
    Ok(())
}

/// A chunk and the time it is due to be written. An empty chunk marks the end of the stream.
type Chunk = (Instant, Vec<u8>);

/// Reads `reader` into chunks that are due `delay` after they were read.
async fn read_chunks(
    mut reader: OwnedReadHalf,
    sender: mpsc::UnboundedSender<Chunk>,
    delay: Duration,
) {
    let mut buffer = vec![0u8; CHUNK_SIZE];
    loop {
        // A read error ends this direction like an end of stream would.
        let count = reader.read(&mut buffer).await.unwrap_or_default();
        let due = Instant::now() + delay;
        if sender.send((due, buffer[..count].to_vec())).is_err() || count == 0 {
            return;
        }
    }
}

/// Writes each chunk at its due time, in order, and shuts the writer down at the end.
async fn write_chunks(
    mut receiver: mpsc::UnboundedReceiver<Chunk>,
    mut writer: OwnedWriteHalf,
) -> anyhow::Result<()> {
    while let Some((due, chunk)) = receiver.recv().await {
        tokio::time::sleep_until(due).await;
        if chunk.is_empty() {
            break;
        }
        writer.write_all(&chunk).await?;
    }
    writer.shutdown().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends a message through a relay with `delay` and returns the echo and the elapsed time.
    async fn echo_through_relay(delay: Duration) -> (Vec<u8>, Duration) {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
        let echo_address = echo.local_addr().expect("echo address");
        tokio::spawn(async move {
            let (mut stream, _) = echo.accept().await.expect("accept");
            let mut buffer = [0u8; 64];
            loop {
                let count = stream.read(&mut buffer).await.expect("read");
                if count == 0 {
                    break;
                }
                stream.write_all(&buffer[..count]).await.expect("write");
            }
        });

        let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let relay_address = relay.local_addr().expect("relay address");
        tokio::spawn(serve(relay, echo_address.to_string(), delay));

        let mut client = TcpStream::connect(relay_address).await.expect("connect");
        let start = Instant::now();
        client.write_all(b"first ").await.expect("send first");
        client.write_all(b"second").await.expect("send second");
        let mut received = vec![0u8; 12];
        client.read_exact(&mut received).await.expect("receive");
        (received, start.elapsed())
    }

    #[tokio::test(start_paused = true)]
    async fn relay_delays_each_direction() {
        let (received, elapsed) = echo_through_relay(Duration::from_millis(100)).await;
        assert_eq!(received, b"first second");
        assert!(
            elapsed >= Duration::from_millis(200),
            "round trip took {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_millis(400),
            "delay is cumulative: {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn server_banner_takes_two_delays() {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind server");
        let server_address = server.local_addr().expect("server address");
        tokio::spawn(async move {
            let (mut stream, _) = server.accept().await.expect("accept");
            stream
                .write_all(b"SSH-2.0-test\r\n")
                .await
                .expect("send banner");
        });
        let relay = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let relay_address = relay.local_addr().expect("relay address");
        tokio::spawn(serve(
            relay,
            server_address.to_string(),
            Duration::from_millis(100),
        ));

        let start = Instant::now();
        let mut client = TcpStream::connect(relay_address).await.expect("connect");
        let mut banner = Vec::new();
        client.read_to_end(&mut banner).await.expect("read banner");
        let elapsed = start.elapsed();

        assert_eq!(banner, b"SSH-2.0-test\r\n");
        assert!(
            elapsed >= Duration::from_millis(200),
            "banner took {elapsed:?}"
        );
        assert!(
            elapsed < Duration::from_millis(300),
            "banner took {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn relay_without_delay_passes_data() {
        let (received, _) = echo_through_relay(Duration::ZERO).await;
        assert_eq!(received, b"first second");
    }
}
