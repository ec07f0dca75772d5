//! Hands one pre-validated set at a time to ipfixrw.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use ipfixrw::information_elements::{get_default_formatter, Formatter};
use ipfixrw::parser::Message;
use ipfixrw::template_store::{Template, TemplateStore};

use super::framing::{HEADER_LEN, SET_HEADER_LEN};
use super::DecodeError;

thread_local! {
    /// The IANA registry, built once per thread.
    static FORMATTER: Rc<Formatter> = Rc::new(get_default_formatter());
}

/// ipfixrw's templates of one observation domain.
pub type Store = HashMap<u16, Template>;

/// The IANA registry ipfixrw uses.
pub fn formatter() -> Rc<Formatter> {
    FORMATTER.with(Rc::clone)
}

/// Parses one set with ipfixrw: `header` is the original message header,
/// `body` the set content (already checked). Template sets update `store`.
pub fn parse_set(
    header: &[u8],
    set_id: u16,
    body: &[u8],
    offset: usize,
    store: &mut Store,
) -> Result<Message, DecodeError> {
    let total = HEADER_LEN + SET_HEADER_LEN + body.len();
    let (Ok(total16), Ok(set_len)) = (u16::try_from(total), u16::try_from(SET_HEADER_LEN + body.len())) else {
        return Err(DecodeError::SetOverrun {
            offset,
            length: SET_HEADER_LEN + body.len(),
            remaining: 0,
        });
    };
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&10u16.to_be_bytes());
    msg.extend_from_slice(&total16.to_be_bytes());
    msg.extend_from_slice(header.get(4..HEADER_LEN).unwrap_or(&[0; 12]));
    msg.extend_from_slice(&set_id.to_be_bytes());
    msg.extend_from_slice(&set_len.to_be_bytes());
    msg.extend_from_slice(body);

    let shared = Rc::new(RefCell::new(std::mem::take(store)));
    let templates: TemplateStore = shared.clone();
    let formatter = formatter();
    let result = catch_unwind(AssertUnwindSafe(|| {
        ipfixrw::parse_ipfix_message(&msg, templates, formatter)
    }));
    *store = shared.take();
    match result {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(err)) => Err(DecodeError::Parse {
            set_id,
            offset,
            message: one_line(&err.to_string()),
        }),
        Err(_) => Err(DecodeError::ParserPanicked { set_id, offset }),
    }
}

/// Collapses whitespace and newlines (binrw errors span several lines).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
