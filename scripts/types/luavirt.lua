---@meta luavirt
-- Definitions of the luavirt scripting API for lua-language-server. Add this folder to
-- `workspace.library` in your .luarc.json. A test keeps this file in step with the functions
-- luavirt registers: every method below exists, and every method luavirt has is below.

---@class luavirt
---@field version string       luavirt's version
---@field dry_run boolean      true under `luavirt run --dry-run`: changes are recorded, not made
---@field disk_modes string[]  the ESX mode names a disk can be set to
local luavirt = {}

---Opens a connection. Without a URI: `-c URI`, else `LUAVIRT_DEFAULT_URI`, else `qemu:///session`
---(in `luavirt test`: the test file's own temporary host, and a URI whose folders lie outside it is refused).
---@param uri? string like "qemu:///session", "qemu:///session?state=/srv/b", "vmx:///srv/datastore1"
---@return luavirt.conn
function luavirt.connect(uri) end

---Opens a connection to each host of a list, for one policy over several hosts. A host that
---cannot be reached does not raise: `fleet:apply` reports it as failed and runs on the others.
---@param uris string[] like { "qemu:///session", "qemu+ssh://root@hostb/session" }
---@return luavirt.fleet
function luavirt.connect_all(uris) end

---Registers a policy hook (policy files only: the policy folder that `luavirt watch` and every
---command load; a script run by `luavirt run` is told so). Events: "snapshot:before",
---"revert:before", "delete:before", "define:before", "migrate:before" (refuse with `ev:veto(reason)`, adjust
---`ev.request`), the same with ":after", and "domain:changed" (a domain of `opts.uri`, default the
---watcher's `-c URI`, changed: `ev.kind`, `ev.changes`). A hook's return value is not read.
---@param event string
---@param fn fun(ev: luavirt.hook_event)
---@param opts? { uri: string? } only for "domain:changed"
function luavirt.on(event, fn, opts) end

---Registers a hook on files of a folder (policy files only). Runs once per change, on the file as
---it is when its turn comes; `ev.kind` is "present" (at start and with --once), "changed" or "removed".
---@param opts { path: string, pattern: string?, recursive: boolean?, on_change: fun(ev: luavirt.watch_event) }
function luavirt.watch(opts) end

---Writes a line to the watcher's log (a policy) or to standard error (a script), with the calling line.
---@param message any
function luavirt.log(message) end

---@class luavirt.hook_event
---@field event string            "snapshot:before", ..., "domain:changed"
---@field uri string
---@field domain luavirt.domain
---@field name string?            domain:changed: the domain's name
---@field kind string?            domain:changed: "present", "defined", "changed", "undefined"
---@field changes table?          domain:changed: { added, removed, modes = {{disk, was, now}}, sets = {{set, was, now}}, definition }
---@field request table?          before hooks: the request, which the hook may change
---@field snapshot string?        revert and delete: the snapshot; snapshot:after: the snapshot taken
---@field deleted string[]?       delete:after: the snapshots deleted
---@field created boolean?        define:after: a new domain
---@field to string?              migrate: the destination's URI
---@field dry_run boolean
---@field depth integer           how many hooked operations enclose this one
---@field veto fun(self, reason: string)? before hooks: refuse the operation with this reason

---@class luavirt.watch_event
---@field event string            "watch"
---@field path string
---@field kind string             "present", "changed", "removed"
---@field content string?         the file's bytes (nil when removed or larger than 16 MiB)

---An error from luavirt, as `pcall` returns it.
---@class luavirt.error
---@field code string    "no-domain", "no-disk", "no-snapshot", "invalid-argument", "invalid-state", "unsupported", "hypervisor", ...
---@field message string what failed, on which object, and what to do

---@class luavirt.fleet
local fleet = {}
---Runs `fn(conn)` on each reached host in turn, in the order given. An error on one host (or a
---host not reached) is recorded and the next host runs; a time or memory limit ends the script.
---`result` is what `fn` returned; `summary` reads like "3 hosts: 2 succeeded, 1 failed".
---@param fn fun(conn: luavirt.conn): any
---@return { hosts: { uri: string, ok: boolean, result: any, error: luavirt.error? }[], succeeded: integer, failed: integer, summary: string }
function fleet:apply(fn) end
---The connections that opened.
---@return luavirt.conn[]
function fleet:connections() end
---Every host's URI, in the order given.
---@return string[]
function fleet:uris() end

---@class luavirt.conn
local conn = {}
---@return string
function conn:uri() end
---Every domain, running ones first.
---@return luavirt.domain[]
function conn:domains() end
---The domain `name` names: its name, its UUID, or while it runs its Id (an error naming close
---names if there is none).
---@param name string name, UUID or Id
---@return luavirt.domain
function conn:domain(name) end
---Defines (or redefines) a domain from libvirt domain XML.
---@param xml string
---@return luavirt.domain
function conn:define(xml) end

---Starts the domain saved in `file` from it, its saved disks back at their saved state.
---@param file string
---@param opts? {paused?: boolean}
---@return luavirt.domain
function conn:restore(file, opts) end

---A disk, as `dom:disks()` returns it: plain data, plus `set_mode`.
---@class luavirt.disk
---@field domain string
---@field target string       "vda", "sdb", ...
---@field source string       path, "nbd://host:port/name", "pool/volume", or "-"
---@field path string?        the local image, if any
---@field format string       "qcow2", "raw", "vmdk", ...
---@field bus string?         "virtio", "scsi", "sata", "ide", ...
---@field device string       "disk", "cdrom", "floppy", "lun"
---@field type string         "file", "block", "network", ...
---@field readonly boolean
---@field shareable boolean
---@field transient boolean
---@field mode string         "persistent", "independent-persistent", "independent-nonpersistent", "nonpersistent", "undoable", "unknown"
---@field snapshot string?    the disk's default in snapshots: "no", "internal", "external", "manual"
---@field serial string?
---@field boot integer?
local disk = {}
---Sets the disk's mode by its ESX name, in the domain's definition. Returns whether it
---changed, and when it applies: "now", or on a running domain whose disk's writes would be
---kept differently, "next-start".
---@param mode "persistent"|"independent-persistent"|"independent-nonpersistent"
---@return boolean changed
---@return "now"|"next-start" applies
function disk:set_mode(mode) end

---@class luavirt.domain
local dom = {}
---@return string
function dom:name() end
---"running", "paused", "shut off", ...
---@return string
function dom:state() end
function dom:start() end
function dom:destroy() end
---Removes the definition. `snapshots_metadata` forgets the snapshots first (their files
---stay); `remove_all_storage` removes every disk image that is this domain's alone, `storage`
---the images of the disks named (targets or paths). Images kept are listed with the reason.
---@param opts? { snapshots_metadata: boolean?, remove_all_storage: boolean?, storage: string[]? }
---@return { snapshots_forgotten: string[], removed: string[], kept: { path: string, reason: string }[] }
function dom:undefine(opts) end
---Facts: name, uuid, id, state, os_type, vcpus, max_memory_kib, used_memory_kib, persistent,
---driver, disks, snapshots, current_snapshot, disk_sets.
---@return table
function dom:info() end
---One disk's image: type, device, target, bus, source, format, mode, readonly, capacity,
---allocation, physical (bytes), backing = {{path, format}, ...}.
---@param disk string target or source path
---@return table
function dom:block_info(disk) end
---Asks the guest to shut down (the ACPI power button). Without options it returns at once;
---`wait` waits until the domain is shut off, `timeout` at most that many seconds (then an
---error, or with `destroy` the domain is destroyed).
---@param opts? { wait: boolean?, timeout: integer?, destroy: boolean? }
---@return "requested"|"shut off"|"destroyed"
function dom:shutdown(opts) end
---What `dom:attach_disk{}` and `dom:detach_disk{}` changed.
---@class luavirt.device_change
---@field target string
---@field live boolean        the running domain changed
---@field config boolean      the definition changed
---@field left_sets string[][] detach: {set, disk} memberships the disk left

---Attaches an image: live and in the definition while the domain runs, in the definition
---when it is shut off, or as `live` and `config` say. `format` is read from the image's
---header when not given; `bus` follows the target's prefix (vd: virtio, sd: scsi, hd: ide).
---@param opts { source: string, target: string, format: string?, bus: string?, device: string?, source_type: string?, readonly: boolean?, shareable: boolean?, serial: string?, mode: string?, live: boolean?, config: boolean? }
---@return luavirt.device_change
function dom:attach_disk(opts) end
---Detaches a disk (target or source path); its image stays.
---@param opts { disk: string, live: boolean?, config: boolean? }
---@return luavirt.device_change
function dom:detach_disk(opts) end
---Restarts the guest at once, like its reset button (it is not asked first).
function dom:reset() end
---Pauses the domain; false when it was paused already.
---@return boolean
function dom:suspend() end
---Resumes a paused domain; false when it was running already.
---@return boolean
function dom:resume() end
---The domain's XML (its persistent definition).
---@return string
function dom:xml() end
---@return luavirt.disk[]
function dom:disks() end
---A disk by target or source path.
---@param name string
---@return luavirt.disk
function dom:disk(name) end
---The named disk set (default "selected").
---@param name? string
---@return luavirt.diskset
function dom:diskset(name) end
---Names of the disk sets that have members.
---@return string[]
function dom:disksets() end

---@class luavirt.snapshot_options
---@field name? string
---@field description? string
---@field disks? luavirt.diskset|string[]|table<string, string|{snapshot?: string, file?: string, driver?: string, mirror?: string}>
---@field disk_set? string
---@field memory? string          "no", "internal", or a file for external memory
---@field disk_only? boolean
---@field live? boolean
---@field halt? boolean
---@field reuse_external? boolean
---@field no_metadata? boolean
---@field atomic? boolean       every snapshot takes all its disks or none; true says so, false is refused

---Takes a snapshot.
---@param opts? luavirt.snapshot_options
---@return luavirt.snapshot
function dom:snapshot(opts) end
---What `dom:snapshot(opts)` would do, without doing it: `{name, memory, disks = {{target, snapshot, reason, file?, format?, mirror?}}}`.
---@param opts? luavirt.snapshot_options
---@return table
function dom:snapshot_plan(opts) end
---Every snapshot, in creation order.
---@return luavirt.snapshot[]
function dom:snapshots() end
---@param name string
---@return luavirt.snapshot
function dom:find_snapshot(name) end
---@return luavirt.snapshot?
function dom:current_snapshot() end
---Starts copying a disk to `dest`; wait for it with `job:wait`.
---@param opts {disk: string, dest: string, format?: string, shallow?: boolean, reuse_external?: boolean, bandwidth?: integer}
---@return luavirt.job
function dom:block_copy(opts) end
---Starts pulling backing data into a disk (down to `base`).
---@param opts {disk: string, base?: string, bandwidth?: integer}
---@return luavirt.job
function dom:block_pull(opts) end
---Starts committing a disk's images (from `top`) down into `base`.
---@param opts {disk: string, base?: string, top?: string, bandwidth?: integer}
---@return luavirt.job
function dom:block_commit(opts) end
---The block job on a disk, if there is one.
---@param disk string
---@return luavirt.job?
function dom:block_job(disk) end

---Saves the running domain's memory to `file` with the disks chosen (`disk_set`, else `disks`, else every disk a snapshot takes), as overlays; it stops unless `live`. Returns `{domain, file, snapshot, live, disks = {{target, saved, image, format}}}`.
---@param opts {file: string, disk_set?: string|luavirt.diskset, disks?: string[], live?: boolean}
---@return table
function dom:save(opts) end

---@class luavirt.migrate_options
---@field to luavirt.conn|string  the destination: a connection, or its URI
---@field disks? string[]         disks whose content moves
---@field disk_set? string|boolean|luavirt.diskset  copy this set's disks (true: "selected")
---@field blank? string[]         disks recreated empty at the destination
---@field shared? string[]        disks the destination sees as they are (the default; a transient disk is blank unless named here)
---@field copy_storage_all? boolean  copy every disk that is not shareable, read-only, empty or transient
---@field targets? table<string, string>  where a copied or blank disk's image goes
---@field target_dir? string      folder for the other copied and blank images
---@field live? boolean           keep the guest running while its memory moves
---@field persistent? boolean     define the domain at the destination
---@field undefine_source? boolean  remove the definition here once the destination has it
---@field paused? boolean         leave it paused at the destination
---@field bandwidth? integer      MiB/s
---@field timeout? integer        seconds before the guest is paused so that its memory finishes moving
---@field tunnelled? boolean      between machines: send the data through ssh instead of TCP
---@field listen_address? string  between machines: where the destination listens (default: its URI's host)
---@field port_range? string      the TCP ports it may listen on, "MIN-MAX" (default "49152-49215")
---@field on_progress? fun(done: integer, total: integer, stage: string)

---Moves the domain to another host: `{plan, memory_bytes, disk_bytes = {{disk, bytes}}, seconds}`.
---@param opts luavirt.migrate_options
---@return table
function dom:migrate(opts) end
---What `dom:migrate(opts)` would do, disk by disk, without doing it: `{domain, from, to, offline, live, transport = {kind, ...}, disks = {{target, action, source, dest, format, capacity, why}}}`.
---@param opts luavirt.migrate_options
---@return table
function dom:migration_plan(opts) end

---@class luavirt.diskset
local set = {}
---@return string
function set:name() end
---Adds a disk (target or source path); false when it was already a member.
---@param disk string
---@return boolean
function set:add(disk) end
---Removes a disk; false when it was not a member.
---@param disk string
---@return boolean
function set:remove(disk) end
---Adds every disk; returns those added.
---@return string[]
function set:add_all() end
---Empties the set; returns the disks it held.
---@return string[]
function set:remove_all() end
---Members, in the domain's disk order.
---@return string[]
function set:list() end
---@return integer
function set:size() end
---@param disk string
---@return boolean
function set:contains(disk) end

---@class luavirt.snapshot
local snap = {}
---@return string
function snap:name() end
---`{name, domain, parent, children, current, creation_time, state, description, memory, disks = {target = mode}}`.
---@return table
function snap:info() end
---The snapshot's `<domainsnapshot>` XML.
---@return string
function snap:xml() end
---@return luavirt.snapshot?
function snap:parent() end
---Changes the snapshot's description (the one part of its record that can change).
---@param text string
---@return boolean changed
function snap:set_description(text) end
---@return luavirt.snapshot[]
function snap:children() end
---Every descendant, each after its own descendants.
---@return luavirt.snapshot[]
function snap:descendants() end
---@return boolean
function snap:is_current() end
---Reverts the domain to this snapshot.
---@param opts? {running?: boolean, paused?: boolean, force?: boolean}
function snap:revert(opts) end
---Deletes this snapshot (and with `children`, its descendants), keeping every other snapshot's data. Returns the names deleted.
---@param opts? {children?: boolean, children_only?: boolean, metadata?: boolean, mirror_pivot?: boolean, mirror_abort?: boolean}
---@return string[]
function snap:delete(opts) end

---@class luavirt.job
local job = {}
---@return string
function job:disk() end
---`{type, current, ["end"], ready, status}`, or nil when the job has ended.
---@return table?
function job:info() end
---Waits until the job is ready (copy, active commit) or done (pull, commit); then pivots or finishes if asked.
---@param opts? {on_progress?: fun(done: integer, total: integer, stage: string), pivot?: boolean, finish?: boolean}
function job:wait(opts) end
function job:abort() end
---Switches the disk to the job's new image (a ready copy or active commit).
function job:pivot() end

-- The assertion library and fixtures of `luavirt test`.

---Registers a test.
---@param name string
---@param fn fun()
function test(name, fn) end
---@param actual any
---@param expected any
---@param msg? string
function assert_eq(actual, expected, msg) end
---@param actual any
---@param unexpected any
---@param msg? string
function assert_ne(actual, unexpected, msg) end
---@param v any
---@param msg? string
function assert_true(v, msg) end
---@param v any
---@param msg? string
function assert_false(v, msg) end
---@param v any
---@param msg? string
function assert_nil(v, msg) end
---@param s string
---@param pattern string
---@param msg? string
function assert_match(s, pattern, msg) end
---@param list any[]
---@param value any
---@param msg? string
function assert_contains(list, value, msg) end
---Calls fn and expects an error whose code is `want` or whose message matches it. Returns the error.
---@param fn fun()
---@param want? string
---@param msg? string
---@return luavirt.error|string
function assert_error(fn, want, msg) end

---@class luavirt.fixture
---@field dir string the test file's temporary folder
fixture = {}
---Creates a disk image with qemu-img; returns its path.
---@param opts {name: string, format?: string, size?: string}
---@return string
function fixture.image(opts) end
---Defines a domain with new images for its disks.
---@param opts {name: string, disks?: {target: string, format?: string, size?: string, path?: string, bus?: string, mode?: string}[]}
---@return luavirt.domain
function fixture.domain(opts) end

return luavirt
