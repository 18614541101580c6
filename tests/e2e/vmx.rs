//! The VMware driver on .vmx files (being written).
