//! Where loaded objects lie in memory (their ELF load segments), so the loader can check the
//! pointers a driver's entry point returns before reading through them: garbage there is a
//! refusal, not a crash of every command.

use std::ffi::c_void;

/// One load segment: `[start, end)` and its `PF_*` flags.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: usize,
    end: usize,
    flags: u32,
}

/// The load segments of every loaded object, grouped by object.
pub struct Mapped {
    objects: Vec<Vec<Segment>>,
}

unsafe extern "C" fn collect(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
    // SAFETY: dl_iterate_phdr passes a valid info for the duration of the call, and `data`
    // is the Vec passed below.
    let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Vec<Segment>>>()) };
    let mut segments = Vec::new();
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr holds dlpi_phnum headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        if ph.p_type == libc::PT_LOAD {
            let start = (info.dlpi_addr as usize).wrapping_add(ph.p_vaddr as usize);
            segments.push(Segment { start, end: start.saturating_add(ph.p_memsz as usize), flags: ph.p_flags });
        }
    }
    out.push(segments);
    0
}

impl Mapped {
    /// The segments of every object loaded now.
    pub fn now() -> Mapped {
        let mut objects: Vec<Vec<Segment>> = Vec::new();
        // SAFETY: the callback only reads what it is given and appends to `objects`.
        unsafe { libc::dl_iterate_phdr(Some(collect), (&mut objects as *mut Vec<Vec<Segment>>).cast()) };
        Mapped { objects }
    }

    /// The object holding address `at` (the driver's entry point), as an index.
    pub fn object_of(&self, at: usize) -> Option<usize> {
        self.objects.iter().position(|segs| segs.iter().any(|s| (s.start..s.end).contains(&at)))
    }

    /// Whether `[at, at + len)` lies inside one readable segment of object `object`.
    pub fn readable_in(&self, object: usize, at: usize, len: usize) -> bool {
        let Some(end) = at.checked_add(len) else {
            return false;
        };
        self.objects[object].iter().any(|s| s.flags & libc::PF_R != 0 && s.start <= at && end <= s.end)
    }

    /// Whether `at` lies in an executable segment of any loaded object.
    pub fn is_code(&self, at: usize) -> bool {
        self.objects.iter().flatten().any(|s| s.flags & libc::PF_X != 0 && (s.start..s.end).contains(&at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static DATA: [u64; 4] = [1, 2, 3, 4];

    #[test]
    fn this_program_s_code_and_data_are_found_and_garbage_is_not() {
        let m = Mapped::now();
        let code = this_program_s_code_and_data_are_found_and_garbage_is_not as *const () as usize;
        let me = m.object_of(code).expect("the test's own code is in a loaded object");
        assert!(m.is_code(code));
        let data = DATA.as_ptr() as usize;
        assert!(m.readable_in(me, data, 32));
        assert!(!m.is_code(data), "data is not code");
        assert!(!m.is_code(1) && m.object_of(1).is_none());
        assert!(!m.readable_in(me, usize::MAX - 4, 8), "no overflow at the top of memory");
        let on_stack = 0u64;
        assert!(!m.readable_in(me, &on_stack as *const u64 as usize, 8), "the stack is no object's data");
    }
}
