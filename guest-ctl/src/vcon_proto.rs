//! The virtio-console multiport control protocol (virtio spec 5.3.6.2): 8-byte control
//! messages `{ id: le32, event: le16, value: le16 }`, a port name following `PORT_NAME`.
//!
//! Pure logic, tested on the host; the driver (`vcon`) moves the bytes.

/// The driver is ready for port messages (id unused, value 1 = ok).
pub const DEVICE_READY: u16 = 0;
/// The device added port `id`.
pub const PORT_ADD: u16 = 1;
/// The device removed port `id`.
pub const PORT_REMOVE: u16 = 2;
/// The driver set up port `id` (value 1 = ok).
pub const PORT_READY: u16 = 3;
/// Port `id` is a console.
pub const CONSOLE_PORT: u16 = 4;
/// Console size changed.
pub const RESIZE: u16 = 5;
/// Port `id` opened (value 1) or closed (value 0) by the other side.
pub const PORT_OPEN: u16 = 6;
/// Port `id` is called the UTF-8 name after the header.
pub const PORT_NAME: u16 = 7;

/// Length of a control message header.
pub const MSG_LEN: usize = 8;

/// A decoded control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msg<'a> {
    /// Port id.
    pub id: u32,
    /// Event code.
    pub event: u16,
    /// Event value.
    pub value: u16,
    /// Bytes after the header (the name of `PORT_NAME`).
    pub extra: &'a [u8],
}

/// Encodes a message without extra bytes.
pub fn encode(id: u32, event: u16, value: u16) -> [u8; MSG_LEN] {
    let mut b = [0u8; MSG_LEN];
    b[..4].copy_from_slice(&id.to_le_bytes());
    b[4..6].copy_from_slice(&event.to_le_bytes());
    b[6..8].copy_from_slice(&value.to_le_bytes());
    b
}

/// Decodes a message; `None` if shorter than the header.
pub fn decode(b: &[u8]) -> Option<Msg<'_>> {
    if b.len() < MSG_LEN {
        return None;
    }
    Some(Msg {
        id: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        event: u16::from_le_bytes([b[4], b[5]]),
        value: u16::from_le_bytes([b[6], b[7]]),
        extra: &b[MSG_LEN..],
    })
}

/// The port name carried by a `PORT_NAME` message (QEMU may add a trailing NUL).
pub fn port_name(extra: &[u8]) -> &[u8] {
    let end = extra.iter().position(|&b| b == 0).unwrap_or(extra.len());
    &extra[..end]
}

/// Receive and transmit queue indices of port `port`: port 0 uses queues 0/1, the control
/// queues are 2/3, port `n >= 1` uses `2n + 2` / `2n + 3`.
pub const fn data_queues(port: u32) -> (u16, u16) {
    if port == 0 {
        (0, 1)
    } else {
        ((2 * port + 2) as u16, (2 * port + 3) as u16)
    }
}

/// Control receive queue.
pub const CTRL_RX_QUEUE: u16 = 2;
/// Control transmit queue.
pub const CTRL_TX_QUEUE: u16 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let b = encode(3, PORT_OPEN, 1);
        assert_eq!(b, [3, 0, 0, 0, 6, 0, 1, 0]);
        let m = decode(&b).unwrap();
        assert_eq!(
            (m.id, m.event, m.value, m.extra.len()),
            (3, PORT_OPEN, 1, 0)
        );
    }

    #[test]
    fn name_and_short_messages() {
        let mut b = encode(0, PORT_NAME, 1).to_vec();
        b.extend_from_slice(b"sis.datactl\0");
        let m = decode(&b).unwrap();
        assert_eq!(port_name(m.extra), b"sis.datactl");
        assert_eq!(port_name(b"abc"), b"abc");
        assert!(decode(&b[..7]).is_none());
    }

    #[test]
    fn queue_numbering() {
        assert_eq!(data_queues(0), (0, 1));
        assert_eq!(data_queues(1), (4, 5));
        assert_eq!(data_queues(2), (6, 7));
    }
}
