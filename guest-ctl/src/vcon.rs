//! virtio-console driver with the multiport control protocol, interrupt driven.
//!
//! virtio-drivers' console driver only knows port 0 without multiport, so this driver uses the
//! crate's transport and [`VirtQueue`] primitives and speaks the control protocol itself
//! ([`crate::vcon_proto`]): negotiate `VIRTIO_CONSOLE_F_MULTIPORT`, set up the control queues
//! (2/3) and the data queues of ports `0..MAX_PORTS`, send `DEVICE_READY`, answer each
//! `PORT_ADD` with `PORT_READY`, and when a `PORT_NAME` names [`PORT_NAME`] bind that port and
//! send `PORT_OPEN` (QEMU passes no data to a port the guest has not opened). `VCON: READY` is
//! printed when the port is bound.
//!
//! Receive buffers stay posted on every data and control receive queue; transmit goes through
//! a byte queue ([`TxBuf`]) drained into a small pool of device buffers, refilled as the device
//! returns them. Everything runs in the device's interrupt handler or under its lock.

use core::fmt;

use virtio_drivers::queue::VirtQueue;
use virtio_drivers::transport::{DeviceStatus, Transport};
use virtio_drivers::{Error, PAGE_SIZE};

use crate::dma::{alloc_buffer, CtlHal};
use crate::txbuf::TxBuf;
use crate::vcon_proto as proto;
use crate::virtio::CtlTransport;

/// Name of the host-control port.
pub const PORT_NAME: &[u8] = b"sis.datactl";
/// Ports whose queues are set up (port 0 plus one more).
pub const MAX_PORTS: usize = 2;
/// `VIRTIO_CONSOLE_F_MULTIPORT`.
const F_MULTIPORT: u64 = 1 << 1;
/// Descriptors per queue.
const QSIZE: usize = 16;
/// Receive buffers per data queue, and their size.
const RX_BUFS: usize = 8;
const RX_LEN: usize = 2048;
/// Transmit buffers per data queue, and their size.
const TX_BUFS: usize = 8;
const TX_LEN: usize = 2048;
/// Control receive buffers (a port name follows the 8-byte header).
const CTRL_RX_BUFS: usize = 8;
const CTRL_RX_LEN: usize = 256;
/// Control transmit buffers.
const CTRL_TX_BUFS: usize = 8;
/// Bytes the outgoing queue holds while the device is busy.
pub const TXQ_BYTES: usize = 64 * 1024;

type Queue = VirtQueue<CtlHal, QSIZE>;

/// Receive queue with `N` buffers of `L` bytes kept posted.
struct RxPool<const N: usize, const L: usize> {
    idx: u16,
    q: Queue,
    mem: &'static mut [u8],
    tokens: [Option<u16>; N],
}

impl<const N: usize, const L: usize> RxPool<N, L> {
    fn new(t: &mut CtlTransport, idx: u16) -> Result<Self, Error> {
        let q = Queue::new(t, idx, false, false)?;
        let mem = alloc_buffer(N * L).ok_or(Error::DmaError)?;
        Ok(RxPool {
            idx,
            q,
            mem,
            tokens: [None; N],
        })
    }

    fn post(&mut self, i: usize) -> Result<(), Error> {
        let buf = &mut self.mem[i * L..(i + 1) * L];
        // SAFETY: the buffer is a fixed slice of a pool allocation owned by this queue for the
        // life of the system; it is not touched again until `pop_used` returns it.
        let tok = unsafe { self.q.add(&[], &mut [buf]) }?;
        self.tokens[i] = Some(tok);
        Ok(())
    }

    fn post_all(&mut self, t: &mut CtlTransport) -> Result<(), Error> {
        for i in 0..N {
            if self.tokens[i].is_none() {
                self.post(i)?;
            }
        }
        if self.q.should_notify() {
            t.notify(self.idx);
        }
        Ok(())
    }

    /// Takes the next filled buffer, copies it into `out` (truncating, counted by the caller
    /// through the returned full length) and re-posts it. Returns (copied, length used).
    fn recv(
        &mut self,
        t: &mut CtlTransport,
        out: &mut [u8],
    ) -> Option<Result<(usize, usize), Error>> {
        let tok = self.q.peek_used()?;
        let Some(i) = self.tokens.iter().position(|&x| x == Some(tok)) else {
            return Some(Err(Error::WrongToken));
        };
        let buf = &mut self.mem[i * L..(i + 1) * L];
        // SAFETY: `buf` is exactly the buffer posted with token `tok`.
        let used = match unsafe { self.q.pop_used(tok, &[], &mut [buf]) } {
            Ok(n) => (n as usize).min(L),
            Err(e) => return Some(Err(e)),
        };
        self.tokens[i] = None;
        let n = used.min(out.len());
        out[..n].copy_from_slice(&self.mem[i * L..i * L + n]);
        if let Err(e) = self.post(i) {
            return Some(Err(e));
        }
        if self.q.should_notify() {
            t.notify(self.idx);
        }
        Some(Ok((n, used)))
    }
}

/// Transmit queue with `N` buffers of `L` bytes.
struct TxPool<const N: usize, const L: usize> {
    idx: u16,
    q: Queue,
    mem: &'static mut [u8],
    tokens: [Option<u16>; N],
    lens: [usize; N],
}

impl<const N: usize, const L: usize> TxPool<N, L> {
    fn new(t: &mut CtlTransport, idx: u16) -> Result<Self, Error> {
        let q = Queue::new(t, idx, false, false)?;
        let mem = alloc_buffer(N * L).ok_or(Error::DmaError)?;
        Ok(TxPool {
            idx,
            q,
            mem,
            tokens: [None; N],
            lens: [0; N],
        })
    }

    fn free_slot(&self) -> Option<usize> {
        self.tokens.iter().position(|t| t.is_none())
    }

    /// Queues buffer `i` holding `len` bytes (already copied in).
    fn submit(&mut self, i: usize, len: usize) -> Result<(), Error> {
        let buf = &self.mem[i * L..i * L + len];
        // SAFETY: the buffer is a fixed slice of this pool's allocation; it is not written
        // again until `pop_used` returns it (its token slot stays taken until then).
        let tok = unsafe { self.q.add(&[buf], &mut []) }?;
        self.tokens[i] = Some(tok);
        self.lens[i] = len;
        Ok(())
    }

    /// Sends `bytes` (at most `L`) now if a buffer is free; false otherwise.
    fn send(&mut self, t: &mut CtlTransport, bytes: &[u8]) -> Result<bool, Error> {
        let Some(i) = self.free_slot() else {
            return Ok(false);
        };
        let len = bytes.len().min(L);
        self.mem[i * L..i * L + len].copy_from_slice(&bytes[..len]);
        self.submit(i, len)?;
        if self.q.should_notify() {
            t.notify(self.idx);
        }
        Ok(true)
    }

    /// Takes back every buffer the device has finished with; returns how many.
    fn reclaim(&mut self) -> Result<usize, Error> {
        let mut n = 0;
        while let Some(tok) = self.q.peek_used() {
            let Some(i) = self.tokens.iter().position(|&x| x == Some(tok)) else {
                return Err(Error::WrongToken);
            };
            let buf = &self.mem[i * L..i * L + self.lens[i]];
            // SAFETY: `buf` is exactly the buffer submitted with token `tok`.
            unsafe { self.q.pop_used(tok, &[buf], &mut []) }?;
            self.tokens[i] = None;
            n += 1;
        }
        Ok(n)
    }

    fn in_flight(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_some()).count()
    }
}

struct Port {
    rx: RxPool<RX_BUFS, RX_LEN>,
    tx: TxPool<TX_BUFS, TX_LEN>,
}

/// Driver counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct VconStats {
    /// Interrupts handled.
    pub irqs: u64,
    /// Bytes received on the bound port.
    pub rx_bytes: u64,
    /// Receive buffers taken from the bound port.
    pub rx_bufs: u64,
    /// Bytes received on ports other than the bound one (dropped).
    pub rx_other_bytes: u64,
    /// Bytes handed to the device for the host.
    pub tx_bytes: u64,
    /// Control messages received.
    pub ctrl_rx: u64,
    /// Control messages that could not be sent (no buffer or queue error).
    pub ctrl_tx_failed: u64,
    /// Ports the device added that this driver cannot serve.
    pub ports_refused: u64,
    /// Host connections opened (`PORT_OPEN 1` on the bound port).
    pub host_opens: u64,
    /// Host connections closed.
    pub host_closes: u64,
    /// Queue errors (wrong token, full queue) seen while servicing.
    pub queue_errors: u64,
}

/// What the device told the driver that the control plane cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortEvent {
    /// The host-control port was bound.
    Bound(u32),
    /// The host connected (true) or disconnected (false).
    Host(bool),
}

/// Why the driver did not start.
#[derive(Debug)]
pub enum VconError {
    /// The device refused the negotiated features.
    Features,
    /// A queue could not be set up.
    Queue(u16, Error),
}

impl fmt::Display for VconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VconError::Features => f.write_str("the device refused the features (FEATURES_OK)"),
            VconError::Queue(q, e) => write!(f, "queue {q}: {e}"),
        }
    }
}

/// The driver.
pub struct Vcon {
    t: CtlTransport,
    multiport: bool,
    max_ports: u32,
    ports: [Option<Port>; MAX_PORTS],
    ctrl_rx: Option<RxPool<CTRL_RX_BUFS, CTRL_RX_LEN>>,
    ctrl_tx: Option<TxPool<CTRL_TX_BUFS, { proto::MSG_LEN }>>,
    bound: Option<u32>,
    host_open: bool,
    txq: TxBuf<TXQ_BYTES>,
    stats: VconStats,
}

impl Vcon {
    /// Brings the device up: features, queues, `DRIVER_OK`, receive buffers, `DEVICE_READY`.
    pub fn start(mut t: CtlTransport) -> Result<Self, VconError> {
        t.set_status(DeviceStatus::empty());
        t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER);
        let offered = t.read_device_features();
        let features = offered & F_MULTIPORT;
        t.write_driver_features(features);
        t.set_status(DeviceStatus::ACKNOWLEDGE | DeviceStatus::DRIVER | DeviceStatus::FEATURES_OK);
        if !t.get_status().contains(DeviceStatus::FEATURES_OK) {
            return Err(VconError::Features);
        }
        t.set_guest_page_size(PAGE_SIZE as u32);
        let multiport = features & F_MULTIPORT != 0;
        let max_ports = if multiport {
            t.read_config_space::<u32>(4).unwrap_or(1).max(1)
        } else {
            1
        };
        let mut ports: [Option<Port>; MAX_PORTS] = [const { None }; MAX_PORTS];
        for (p, slot) in ports
            .iter_mut()
            .enumerate()
            .take((max_ports as usize).min(MAX_PORTS))
        {
            let (rxq, txq) = proto::data_queues(p as u32);
            let rx = RxPool::new(&mut t, rxq).map_err(|e| VconError::Queue(rxq, e))?;
            let tx = TxPool::new(&mut t, txq).map_err(|e| VconError::Queue(txq, e))?;
            *slot = Some(Port { rx, tx });
        }
        let (ctrl_rx, ctrl_tx) = if multiport {
            let rx = RxPool::new(&mut t, proto::CTRL_RX_QUEUE)
                .map_err(|e| VconError::Queue(proto::CTRL_RX_QUEUE, e))?;
            let tx = TxPool::new(&mut t, proto::CTRL_TX_QUEUE)
                .map_err(|e| VconError::Queue(proto::CTRL_TX_QUEUE, e))?;
            (Some(rx), Some(tx))
        } else {
            (None, None)
        };
        t.set_status(
            DeviceStatus::ACKNOWLEDGE
                | DeviceStatus::DRIVER
                | DeviceStatus::FEATURES_OK
                | DeviceStatus::DRIVER_OK,
        );
        let mut v = Vcon {
            t,
            multiport,
            max_ports,
            ports,
            ctrl_rx,
            ctrl_tx,
            // Without multiport there is only port 0 and nothing to bind by name.
            bound: if multiport { None } else { Some(0) },
            host_open: !multiport,
            txq: TxBuf::new(),
            stats: VconStats::default(),
        };
        for p in v.ports.iter_mut().flatten() {
            p.rx.post_all(&mut v.t)
                .map_err(|e| VconError::Queue(p.rx.idx, e))?;
        }
        if let Some(rx) = v.ctrl_rx.as_mut() {
            rx.post_all(&mut v.t)
                .map_err(|e| VconError::Queue(rx.idx, e))?;
        }
        if multiport {
            v.send_ctrl(0, proto::DEVICE_READY, 1);
        }
        Ok(v)
    }

    fn send_ctrl(&mut self, id: u32, event: u16, value: u16) {
        let msg = proto::encode(id, event, value);
        let Some(tx) = self.ctrl_tx.as_mut() else {
            return;
        };
        let _ = tx.reclaim();
        if !matches!(tx.send(&mut self.t, &msg), Ok(true)) {
            self.stats.ctrl_tx_failed += 1;
        }
    }

    /// Acknowledges the device interrupt; call first in the handler.
    pub fn ack(&mut self) {
        self.stats.irqs += 1;
        self.t.ack_interrupt();
    }

    /// Handles pending control messages; returns the first event the control plane must know
    /// about (call until `None`).
    pub fn poll_control(&mut self) -> Option<PortEvent> {
        let mut buf = [0u8; CTRL_RX_LEN];
        loop {
            let rx = self.ctrl_rx.as_mut()?;
            let (n, _) = match rx.recv(&mut self.t, &mut buf)? {
                Ok(r) => r,
                Err(_) => {
                    self.stats.queue_errors += 1;
                    return None;
                }
            };
            self.stats.ctrl_rx += 1;
            let Some(msg) = proto::decode(&buf[..n]) else {
                continue;
            };
            if let Some(ev) = self.on_control(msg.id, msg.event, msg.value, msg.extra) {
                return Some(ev);
            }
        }
    }

    fn on_control(&mut self, id: u32, event: u16, value: u16, extra: &[u8]) -> Option<PortEvent> {
        let served = (id as usize) < MAX_PORTS && self.ports[id as usize].is_some();
        match event {
            proto::PORT_ADD => {
                if !served {
                    self.stats.ports_refused += 1;
                }
                self.send_ctrl(id, proto::PORT_READY, u16::from(served));
            }
            proto::PORT_NAME
                if served && proto::port_name(extra) == PORT_NAME && self.bound != Some(id) =>
            {
                self.bound = Some(id);
                self.send_ctrl(id, proto::PORT_OPEN, 1);
                return Some(PortEvent::Bound(id));
            }
            proto::PORT_OPEN if Some(id) == self.bound => {
                let open = value != 0;
                if open != self.host_open {
                    self.host_open = open;
                    if open {
                        self.stats.host_opens += 1;
                    } else {
                        self.stats.host_closes += 1;
                        self.txq.clear();
                    }
                    return Some(PortEvent::Host(open));
                }
            }
            proto::PORT_REMOVE if Some(id) == self.bound => {
                self.bound = None;
                self.host_open = false;
            }
            // Console size and console-port announcements do not matter to a byte channel.
            proto::CONSOLE_PORT | proto::RESIZE => {}
            _ => {}
        }
        None
    }

    /// Copies the next received chunk of the bound port into `out`; data of other ports is
    /// dropped and counted. `None` when nothing is pending.
    pub fn recv(&mut self, out: &mut [u8]) -> Option<usize> {
        for p in 0..MAX_PORTS {
            let is_bound = self.bound == Some(p as u32);
            let Some(port) = self.ports[p].as_mut() else {
                continue;
            };
            while let Some(r) = port.rx.recv(&mut self.t, out) {
                match r {
                    Ok((n, used)) if is_bound => {
                        self.stats.rx_bufs += 1;
                        self.stats.rx_bytes += n as u64;
                        // RX_LEN-sized buffers and `out` must match; a shorter `out` loses bytes.
                        self.stats.queue_errors += (used - n).min(1) as u64;
                        return Some(n);
                    }
                    Ok((_, used)) => self.stats.rx_other_bytes += used as u64,
                    Err(_) => {
                        self.stats.queue_errors += 1;
                        break;
                    }
                }
            }
        }
        None
    }

    /// Queues one reply line for the host; false (counted as a drop) if the queue is full.
    pub fn send_line(&mut self, line: &[u8]) -> bool {
        let ok = self.txq.push_line(line);
        self.flush();
        ok
    }

    /// Takes back finished transmit buffers and moves queued bytes into free ones.
    pub fn flush(&mut self) {
        let Some(p) = self.bound else { return };
        let Some(port) = self.ports[p as usize].as_mut() else {
            return;
        };
        if port.tx.reclaim().is_err() {
            self.stats.queue_errors += 1;
        }
        let mut chunk = [0u8; TX_LEN];
        let mut submitted = false;
        while !self.txq.is_empty() {
            let Some(i) = port.tx.free_slot() else { break };
            let n = self.txq.pop_into(&mut chunk);
            port.tx.mem[i * TX_LEN..i * TX_LEN + n].copy_from_slice(&chunk[..n]);
            if port.tx.submit(i, n).is_err() {
                self.stats.queue_errors += 1;
                break;
            }
            self.stats.tx_bytes += n as u64;
            submitted = true;
        }
        // Notify only for new buffers: QEMU answers every transmit notification with an
        // interrupt, even when it found nothing to send, so a spurious one would loop.
        if submitted && port.tx.q.should_notify() {
            self.t.notify(port.tx.idx);
        }
    }

    /// Size of the receive chunks `recv` hands out.
    pub const RX_CHUNK: usize = RX_LEN;

    /// Counters.
    pub fn stats(&self) -> VconStats {
        self.stats
    }

    /// (bytes queued for the host, lines dropped because the queue was full, bytes dropped,
    /// most bytes ever queued, device buffers in flight).
    pub fn tx_state(&self) -> (usize, u64, u64, usize, usize) {
        let (lines, bytes, high) = self.txq.stats();
        let in_flight = self
            .bound
            .and_then(|p| self.ports[p as usize].as_ref())
            .map_or(0, |p| p.tx.in_flight());
        (self.txq.len(), lines, bytes, high, in_flight)
    }

    /// (multiport negotiated, ports the device offers, bound port, host connected).
    pub fn link(&self) -> (bool, u32, Option<u32>, bool) {
        (self.multiport, self.max_ports, self.bound, self.host_open)
    }
}
