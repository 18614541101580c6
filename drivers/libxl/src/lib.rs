//! luavirt's Xen driver (`libxl:///FOLDER`).

pub mod cfg;
