//! Raw Kafka requests over a blocking `TcpStream`, for smoke tests and readiness checks.
//!
//! Encoding and decoding go through the `kafka-protocol` crate (its `client` feature
//! encodes requests and decodes responses), so these helpers check the harness, not weir.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// The largest frame the helpers accept (the brokers here answer far less).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Connects with a timeout and sets read/write timeouts on the stream.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Encodes `header` + `body` as one size-prefixed request frame.
pub fn encode_request<R: Request>(header: &RequestHeader, body: &R) -> io::Result<Bytes> {
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(|e| invalid(format!("encoding request header: {e}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| invalid(format!("encoding request v{version}: {e}")))?;
    let len = i32::try_from(buf.len() - 4).map_err(|_| invalid("request too large".into()))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Reads one size-prefixed frame and returns its body (without the size prefix).
pub fn read_frame(stream: &mut TcpStream) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len).map_err(|_| invalid(format!("negative frame size {len}")))?;
    if len > MAX_FRAME {
        return Err(invalid(format!("frame size {len} over {MAX_FRAME}")));
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok(Bytes::from(body))
}

/// Sends `body` as API version `version` with `correlation_id` and decodes the answer,
/// checking that the response carries the same correlation id.
pub fn roundtrip<R: Request>(
    stream: &mut TcpStream,
    correlation_id: i32,
    version: i16,
    body: &R,
) -> io::Result<R::Response> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("weir-harness")));
    stream.write_all(&encode_request(&header, body)?)?;
    let mut frame = read_frame(stream)?;
    let response_header = kafka_protocol::messages::ResponseHeader::decode(
        &mut frame,
        R::Response::header_version(version),
    )
    .map_err(|e| invalid(format!("decoding response header: {e}")))?;
    if response_header.correlation_id != correlation_id {
        return Err(invalid(format!(
            "correlation id {} in the response, {correlation_id} sent",
            response_header.correlation_id
        )));
    }
    let response = R::Response::decode(&mut frame, version)
        .map_err(|e| invalid(format!("decoding response v{version}: {e}")))?;
    if frame.has_remaining() {
        return Err(invalid(format!(
            "{} bytes left after the response",
            frame.remaining()
        )));
    }
    Ok(response)
}

/// One ApiVersions v3 round trip (the first request every client sends).
pub fn api_versions(addr: SocketAddr, timeout: Duration) -> io::Result<ApiVersionsResponse> {
    let mut stream = connect(addr, timeout)?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("weir-harness"))
        .with_client_software_version(StrBytes::from_static_str("0"));
    roundtrip(&mut stream, 1, 3, &request)
}
