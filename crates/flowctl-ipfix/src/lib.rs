//! IPFIX (RFC 7011) for flowctl.
