//! The driver: runs the pipeline stages as a flat list.
