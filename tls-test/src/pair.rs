//! The in-memory Pair harness (to be written).
