//! The tokio binding: the driver is a task on the runtime the consumer was
//! created in, each connection a task that copies bytes both ways.

use std::future::Future;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use odradek_client::{AsyncRuntime, Connection, Driver, Link, Runtime};
use odradek_core::{Error, Misuse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The tokio runtime a consumer runs on: the one it was created in.
#[derive(Debug, Clone)]
pub struct TokioRuntime(Handle);

impl Runtime for TokioRuntime {
    type Conn = TokioConn;

    fn start() -> Result<Self, Error> {
        Handle::try_current()
            .map(TokioRuntime)
            .map_err(|_| Error::InvalidArgument(Misuse::OutsideRuntime("tokio")))
    }

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn spawn_driver(&self, driver: Driver<Self>) -> Result<(), Error> {
        self.0.spawn(driver.run());
        Ok(())
    }

    fn connect(&self, link: Link) -> TokioConn {
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let task = self.0.spawn(connection(link, outbound_rx));
        TokioConn { outbound, task }
    }
}

impl AsyncRuntime for TokioRuntime {
    fn sleep_until(&self, deadline: Instant) -> impl Future<Output = ()> + Send {
        tokio::time::sleep_until(deadline.into())
    }
}

/// A connection task; dropping it aborts the task, closing the socket.
#[derive(Debug)]
pub struct TokioConn {
    outbound: mpsc::UnboundedSender<Bytes>,
    task: JoinHandle<()>,
}

impl Connection for TokioConn {
    fn send(&mut self, data: Bytes) {
        // A send to a finished task fails; the task already reported the
        // connection closed, which the driver hears next.
        let _ = self.outbound.send(data);
    }
}

impl Drop for TokioConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One broker connection: connect, then copy bytes both ways until either
/// side ends, reporting everything to the driver.
async fn connection(link: Link, mut outbound: mpsc::UnboundedReceiver<Bytes>) {
    // The core bounds how long this may take (connection setup timeout)
    // and closes the connection, aborting this task, if it runs out.
    let address = link.address();
    let mut stream = match TcpStream::connect((address.host.as_str(), address.port)).await {
        Ok(stream) => stream,
        Err(e) => return link.failed(e.to_string()),
    };
    let _ = stream.set_nodelay(true);
    if link.keepalive() {
        if let Err(e) = socket2::SockRef::from(&stream).set_keepalive(true) {
            return link.failed(format!("cannot turn TCP keepalive on: {e}"));
        }
    }
    if !link.connected() {
        return;
    }
    let (mut reader, mut writer) = stream.split();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        tokio::select! {
            data = outbound.recv() => match data {
                Some(data) => {
                    if writer.write_all(&data).await.is_err() {
                        break;
                    }
                }
                None => return,
            },
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if !link.received(buf.split().freeze()) {
                        return;
                    }
                    if buf.capacity() < 16 * 1024 {
                        buf.reserve(64 * 1024);
                    }
                }
            },
        }
    }
    link.closed();
}
