//! One module per Kafka API, each holding the request and response bodies
//! and their nested structs. The top-level bodies are re-exported here;
//! nested types stay in their API's module (`messages::fetch::FetchTopic`).
//!
//! Field versions follow Apache Kafka 4.1's message schemas. Each field's
//! doc says what it means; the versions it exists in are part of its
//! declaration.

pub mod api_versions;
pub mod metadata;

pub use api_versions::{ApiVersionsRequest, ApiVersionsResponse};
pub use metadata::{MetadataRequest, MetadataResponse};
