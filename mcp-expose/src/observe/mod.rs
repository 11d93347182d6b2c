//! Observability: Prometheus metrics, and the landing page that tells a visitor how to connect.

pub(crate) mod clients;
pub(crate) mod landing;
pub(crate) mod metrics;
pub(crate) mod traffic;
