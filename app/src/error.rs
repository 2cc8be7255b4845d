//! The one error type of the server functions, and how the page reads it.
//!
//! The page reacts to an error's kind, never to its text: an outage is
//! [`ShopError::Unavailable`], whatever its message says.

use std::fmt;

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// What every failure of the infrastructure says: the page shows it, and
/// recovers by itself once the shop answers again.
pub const UNAVAILABLE: &str = "The shop is unavailable right now; please try again.";

/// Why a server function did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShopError {
    /// The shop (Redis) cannot be reached or misbehaves; the details are in
    /// the server's log. The page says so and recovers by itself.
    Unavailable,
    /// Refused, with what the person can do about it: a field to correct, a
    /// product that is gone, a sign-in needed, a limit to wait out.
    Refused(String),
    /// The call itself failed (the network, a server restarting, an answer
    /// that could not be read).
    Call(String),
}

impl ShopError {
    /// Whether this is the shop being unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, ShopError::Unavailable)
    }
}

impl fmt::Display for ShopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShopError::Unavailable => f.write_str(UNAVAILABLE),
            ShopError::Refused(message) | ShopError::Call(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ShopError {}

impl FromServerFnError for ShopError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(error: ServerFnErrorErr) -> ShopError {
        ShopError::Call(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_tells_an_outage_by_its_kind_and_shows_every_error_as_its_message() {
        assert!(ShopError::Unavailable.is_unavailable());
        assert_eq!(ShopError::Unavailable.to_string(), UNAVAILABLE);
        // A refusal whose text happens to be the outage's is still a refusal.
        assert!(!ShopError::Refused(UNAVAILABLE.into()).is_unavailable());
        assert_eq!(
            ShopError::Refused("quantity: must be a whole number".into()).to_string(),
            "quantity: must be a whole number"
        );
        let call = ShopError::from_server_fn_error(ServerFnErrorErr::Request("connection refused".into()));
        assert!(matches!(call, ShopError::Call(_)) && !call.is_unavailable());
    }

    #[test]
    fn an_error_crosses_the_wire_whole() {
        for error in [ShopError::Unavailable, ShopError::Refused("No such dead letter.".into())] {
            assert_eq!(ShopError::de(error.ser()), error);
        }
    }
}
