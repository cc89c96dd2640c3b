//! The agent's frames, both ways, as a socket delivers them:
//! `devc_keydelivery::protocol::read_frame` over the whole input (up to 8
//! frames), each body through `parse_request` (what the agent reads),
//! `parse_slots` for the slot lines of `open` and `seal`, and
//! `parse_response` (what a client reads).
//!
//! Oracles:
//! - a frame body is at most `MAX_MESSAGE_LEN` bytes;
//! - every parsed request and response encodes as a frame that reads and
//!   parses back to the same JSON; the error response a bad request gets
//!   does too;
//! - slot lines that parse are exactly the lines `wire_slots` sends.
#![no_main]

use devc_keydelivery::protocol::{
    MAX_MESSAGE_LEN, Request, RequestFrame, Response, ResponseFrame, VERSION, encode_frame,
    parse_request, parse_response, parse_slots, read_frame, wire_slots,
};
use libfuzzer_sys::fuzz_target;

/// Encodes `frame`, reads it back as one frame, and returns its body.
fn reframe(frame: &impl serde::Serialize) -> Vec<u8> {
    let bytes = encode_frame(frame).expect("a parsed message encodes");
    let mut r = &bytes[..];
    let body = read_frame(&mut r)
        .expect("an encoded frame reads")
        .expect("one frame");
    assert!(r.is_empty(), "encode_frame wrote more than one frame");
    body.to_vec()
}

fn check_response(resp: Response) {
    let body = reframe(&ResponseFrame { v: VERSION, resp });
    let back = parse_response(&body).expect("an encoded response parses");
    let again = reframe(&ResponseFrame {
        v: VERSION,
        resp: back,
    });
    assert_eq!(again, body, "a response does not round-trip");
}

fn check_request(req: Request) {
    if let Request::Open { slots, .. } | Request::Seal { slots, .. } = &req
        && let Some(parsed) = parse_slots(slots)
    {
        assert_eq!(
            &wire_slots(&parsed),
            slots,
            "slot lines have a second spelling"
        );
    }
    let body = reframe(&RequestFrame { v: VERSION, req });
    let back = parse_request(&body).expect("an encoded request parses");
    let again = reframe(&RequestFrame {
        v: VERSION,
        req: back,
    });
    assert_eq!(again, body, "a request does not round-trip");
}

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    for _ in 0..8 {
        let body = match read_frame(&mut r) {
            Ok(Some(body)) => body,
            Ok(None) | Err(_) => break,
        };
        assert!(body.len() <= MAX_MESSAGE_LEN);
        match parse_request(&body) {
            Ok(req) => check_request(req),
            Err(resp) => check_response(resp),
        }
        if let Ok(resp) = parse_response(&body) {
            check_response(resp);
        }
    }
});
