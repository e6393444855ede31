"""The classification of the outside world: every public callable of the standard-library
modules that touch it, as seen from service code, is one of

* **deterministic**: no nondeterminism of its own (pure functions, types, and functions whose
  only IO goes through the journaled or refused functions they call — ``os.path.exists`` reaches
  ``os.stat``);
* **journaled**: its value is recorded when recording and served from the journal when
  replaying (``Journaled``, with an adapter for a value that cannot cross a membrane as it is);
* **refused**: it acts on the world or on the whole process, so service code may do it only
  inside an ``@effect`` (``Refused``, with what it does).

``tests/test_surface.py`` walks these modules on the running Python and fails on any public name
this table leaves out, so a new Python cannot open a silent hole. ``_interpose`` applies it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["DETERMINISTIC", "Journaled", "Refused", "Special", "Rule", "SURFACE", "MODULES"]

DETERMINISTIC = "deterministic"


@dataclasses.dataclass(frozen=True)
class Journaled:
    """Recorded and replayed. ``encode`` turns the value into one that can cross a membrane and
    ``decode`` rebuilds it (a ``stat_result`` journals as its fields)."""

    encode: Callable[[Any], Any] | None = None
    decode: Callable[[Any], Any] | None = None


@dataclasses.dataclass(frozen=True)
class Refused:
    """Refused outside an ``@effect``; ``what`` says what it does, for the message."""

    what: str


@dataclasses.dataclass(frozen=True)
class Special:
    """Covered by a mechanism of its own (``why`` names it): per-service state such as
    ``os.environ`` and ``random``'s generator, the file reader behind ``open``, the thread guard."""

    why: str


Rule = str | Journaled | Refused | Special
JOURNALED = Journaled()


def _names(text: str, rule: Rule) -> dict[str, Rule]:
    return dict.fromkeys(text.split(), rule)


def _refused(what: str, text: str) -> dict[str, Rule]:
    return _names(text, Refused(what))


def _d(text: str) -> dict[str, Rule]:
    return _names(text, DETERMINISTIC)


def _j(text: str, rule: Journaled = JOURNALED) -> dict[str, Rule]:
    return _names(text, rule)


def _struct(kind: Callable[..., Any]) -> Journaled:
    """A structseq (stat_result, struct_time): journaled as its fields, rebuilt as itself."""
    return Journaled(encode=lambda value: list(value), decode=lambda fields: kind(fields))


_STAT_HIDDEN = ("st_atime", "st_mtime", "st_ctime", "st_atime_ns", "st_mtime_ns", "st_ctime_ns",
                "st_blksize", "st_blocks", "st_rdev")
"""A stat_result's fields past its 10 visible ones, in the order its constructor takes them."""


def _stat_result() -> Journaled:
    import os

    def encode(value: Any) -> list[Any]:
        return [*value, *(getattr(value, name) for name in _STAT_HIDDEN)]

    return Journaled(encode=encode, decode=lambda fields: os.stat_result(fields))


def _scandir() -> Journaled:
    from . import _entries

    return Journaled(encode=_entries.encode_scandir, decode=_entries.decode_scandir)


ENVIRON = Special("os.environ as the service sees it: reads journaled, writes its own")
RANDOM = Special("the service's own random generator, seeded from its journal")
FILES = Special("the service's file reader: reads journaled, app files from its bundle")
THREADS = Special("threads started by service code are refused")
DATES = Special("datetime.now, utcnow and today journaled")
HOOKS = Special("a debugger's, coverage's or profiler's hook: left as it is (a wrapper would be "
                "a frame the debugger warns about); what a tracer does is a host tool's, not "
                "journaled, and what it changes in a service's state the digest sees")
ARGV = Special("the argv, flags and stdin the service saw at build time")

_PROCESS = "starting or controlling a process"
_FILES_W = "changing files"
_FD = "low-level file-descriptor IO (use open(), whose reads are journaled)"
_WIDE = "changing a setting of the whole process"
_NET = "network IO"
_SIGNALS = "handling or sending signals"
_CTYPES = "calling native code through ctypes"
_THREAD = "starting a thread"


def _os() -> dict[str, Rule]:
    import os

    return {
        **_d("DirEntry GenericAlias Mapping MutableMapping PathLike WCOREDUMP WEXITSTATUS "
             "WIFCONTINUED WIFEXITED WIFSIGNALED WIFSTOPPED WSTOPSIG WTERMSIG fsdecode fsencode "
             "fspath get_exec_path major minor makedev stat_result statvfs_result "
             "terminal_size times_result uname_result waitid_result sched_param "
             "waitstatus_to_exitcode strerror walk"),
        **_j("access getcwd getcwdb cpu_count getegid geteuid getgid getgroups getgrouplist "
             "getlogin getpgid getpgrp getpid getppid getpriority getresgid getresuid getsid "
             "getuid getloadavg sched_getaffinity sched_getscheduler sched_get_priority_max "
             "sched_get_priority_min sched_rr_get_interval sched_getparam readlink listdir "
             "isatty ttyname ctermid confstr sysconf pathconf fpathconf device_encoding "
             "getxattr listxattr get_blocking get_inheritable urandom getrandom"),
        **_j("stat lstat fstat", _stat_result()),
        **_j("statvfs fstatvfs", _struct(os.statvfs_result)),
        **_j("uname", _struct(os.uname_result)),
        **_j("times", _struct(os.times_result)),
        **_j("get_terminal_size", _struct(os.terminal_size)),
        **_j("scandir", _scandir()),
        "getenv": ENVIRON, "getenvb": ENVIRON, "putenv": ENVIRON, "unsetenv": ENVIRON,
        **_refused(_PROCESS, "abort execl execle execlp execlpe execv execve execvp execvpe "
                   "fork forkpty kill killpg nice pidfd_open popen posix_spawn posix_spawnp "
                   "register_at_fork setegid seteuid setgid setgroups setpgid setpgrp "
                   "setpriority setregid setresgid setresuid setreuid setsid setuid spawnl "
                   "spawnle spawnlp spawnlpe spawnv spawnve spawnvp spawnvpe system wait wait3 "
                   "wait4 waitid waitpid initgroups login_tty sched_setaffinity "
                   "sched_setparam sched_setscheduler sched_yield tcsetpgrp tcgetpgrp"),
        **_refused(_FILES_W, "chmod chown chroot copy_file_range fchmod fchown ftruncate "
                   "lchown link makedirs mkdir mkfifo mknod remove removedirs removexattr "
                   "rename renames replace rmdir setxattr symlink truncate unlink utime "
                   "posix_fallocate sync fdatasync fsync lockf"),
        **_refused(_FD, "close closerange dup dup2 eventfd eventfd_read eventfd_write fdopen "
                   "lseek memfd_create open openpty pipe pipe2 posix_fadvise pread preadv "
                   "pwrite pwritev read readv sendfile set_blocking set_inheritable splice "
                   "write writev fwalk"),
        **_refused(_WIDE, "chdir fchdir umask"),
    }


def _time() -> dict[str, Rule]:
    import time

    return {
        **_d("struct_time strptime get_clock_info"),
        **_j("time time_ns monotonic monotonic_ns perf_counter perf_counter_ns process_time "
             "process_time_ns thread_time thread_time_ns clock_gettime clock_gettime_ns "
             "clock_getres pthread_getcpuclockid sleep mktime ctime asctime strftime"),
        **_j("localtime gmtime", _struct(time.struct_time)),
        **_refused(_WIDE, "tzset clock_settime clock_settime_ns"),
    }


def _random() -> dict[str, Rule]:
    return {
        **_names("Random SystemRandom betavariate choice choices expovariate gammavariate gauss "
                 "getrandbits getstate lognormvariate normalvariate paretovariate randbytes "
                 "randint random randrange sample seed setstate shuffle triangular uniform "
                 "vonmisesvariate weibullvariate", RANDOM),
    }


def _socket() -> dict[str, Rule]:
    return {
        **_d("AddressFamily AddressInfo CMSG_LEN CMSG_SPACE IntEnum IntFlag MsgFlag SocketIO "
             "SocketKind SocketType htonl htons ntohl ntohs inet_aton inet_ntoa inet_ntop "
             "inet_pton getdefaulttimeout has_dualstack_ipv6"),
        **_j("gethostname getfqdn gethostbyname gethostbyname_ex gethostbyaddr getaddrinfo "
             "getnameinfo getprotobyname getservbyname getservbyport if_nameindex "
             "if_indextoname if_nametoindex"),
        **_refused(_NET, "socket socketpair create_connection create_server fromfd dup close "
                   "recv_fds send_fds"),
        **_refused(_WIDE, "setdefaulttimeout sethostname"),
    }


def _urllib_request() -> dict[str, Rule]:
    return {
        # Classes and pure helpers: building a request or an opener does no IO (a proxy
        # handler reads the environment, which is the service's own, journaled).
        **_d("AbstractBasicAuthHandler AbstractDigestAuthHandler AbstractHTTPHandler "
             "BaseHandler CacheFTPHandler DataHandler FTPHandler FancyURLopener FileHandler "
             "HTTPBasicAuthHandler HTTPCookieProcessor HTTPDefaultErrorHandler "
             "HTTPDigestAuthHandler HTTPErrorProcessor HTTPHandler HTTPPasswordMgr "
             "HTTPPasswordMgrWithDefaultRealm HTTPPasswordMgrWithPriorAuth HTTPRedirectHandler "
             "HTTPSHandler OpenerDirector ProxyBasicAuthHandler ProxyDigestAuthHandler "
             "ProxyHandler Request URLopener UnknownHandler addclosehook addinfourl "
             "build_opener getproxies getproxies_environment parse_http_list parse_keqv_list "
             "pathname2url proxy_bypass proxy_bypass_environment quote request_host unquote "
             "unquote_to_bytes unwrap url2pathname urljoin urlparse urlsplit urlunparse "
             "ftperrors noheaders"),
        # Host lookups the module caches after the first call: journaled as a whole, so a
        # replay does not depend on whether another caller filled the cache.
        **_j("localhost thishost"),
        # urlopen builds and caches the module's opener on its first call, reading the
        # environment only then: refused at the call, before anything it would read.
        **_refused(_NET, "urlopen urlretrieve ftpwrapper"),
        **_refused(_WIDE, "install_opener urlcleanup"),
    }


def _platform() -> dict[str, Rule]:
    import platform

    return {
        **_d("uname_result python_version python_version_tuple python_implementation "
             "python_branch python_revision python_build python_compiler system_alias"),
        **_j("architecture freedesktop_os_release java_ver libc_ver mac_ver machine node "
             "platform processor release system version win32_edition win32_is_iot "
             "win32_ver"),
        **_j("uname", Journaled(encode=lambda v: list(v),
                                decode=lambda f: platform.uname_result(*f[:5]))),
    }


SURFACE: dict[str, Callable[[], dict[str, Rule]]] = {
    "os": _os,
    "os.path": lambda: _d(
        "abspath basename commonpath commonprefix dirname exists expanduser expandvars "
        "getatime getctime getmtime getsize isabs isdir isfile islink ismount join lexists "
        "normcase normpath realpath relpath samefile sameopenfile samestat split splitdrive "
        "splitext"),
    "time": _time,
    "datetime": lambda: {**_d("time timedelta timezone tzinfo"), "date": DATES,
                         "datetime": DATES},
    "random": _random,
    "uuid": lambda: {**_d("Enum SafeUUID UUID bytes_ int_ uuid3 uuid5"),
                     **_j("getnode uuid1 uuid4")},
    "secrets": lambda: {**_d("compare_digest"), "SystemRandom": RANDOM,
                        **_j("choice randbelow randbits token_bytes token_hex token_urlsafe")},
    "socket": _socket,
    "urllib.request": _urllib_request,
    "platform": _platform,
    "pathlib": lambda: _d("Path PosixPath PurePath PurePosixPath PureWindowsPath S_ISBLK "
                          "S_ISCHR S_ISDIR S_ISFIFO S_ISLNK S_ISREG S_ISSOCK Sequence "
                          "WindowsPath attrgetter urlquote_from_bytes"),
    "io": lambda: {**_d("BufferedIOBase BufferedRWPair BufferedRandom BufferedReader "
                        "BufferedWriter BytesIO FileIO IOBase IncrementalNewlineDecoder "
                        "RawIOBase StringIO TextIOBase TextIOWrapper text_encoding open_code"),
                   "open": FILES},
    "codecs": lambda: {**_d(
        "BufferedIncrementalDecoder BufferedIncrementalEncoder Codec CodecInfo EncodedFile "
        "IncrementalDecoder IncrementalEncoder StreamReader StreamReaderWriter StreamRecoder "
        "StreamWriter ascii_decode ascii_encode backslashreplace_errors charmap_build "
        "charmap_decode charmap_encode decode encode escape_decode escape_encode getdecoder "
        "getencoder getincrementaldecoder getincrementalencoder getreader getwriter "
        "ignore_errors iterdecode iterencode latin_1_decode latin_1_encode lookup lookup_error "
        "make_encoding_map make_identity_dict namereplace_errors open raw_unicode_escape_decode "
        "raw_unicode_escape_encode readbuffer_encode replace_errors strict_errors "
        "unicode_escape_decode unicode_escape_encode utf_16_be_decode utf_16_be_encode "
        "utf_16_decode utf_16_encode utf_16_ex_decode utf_16_le_decode utf_16_le_encode "
        "utf_32_be_decode utf_32_be_encode utf_32_decode utf_32_encode utf_32_ex_decode "
        "utf_32_le_decode utf_32_le_encode utf_7_decode utf_7_encode utf_8_decode "
        "utf_8_encode xmlcharrefreplace_errors"),
        **_refused(_WIDE, "register register_error unregister")},
    "shutil": lambda: {**_d("copy copy2 copyfile copyfileobj copymode copystat copytree "
                            "get_archive_formats get_unpack_formats ignore_patterns "
                            "make_archive move rmtree unpack_archive which chown "
                            "get_terminal_size"),
                       **_j("disk_usage"),
                       **_refused(_WIDE, "register_archive_format register_unpack_format "
                                  "unregister_archive_format unregister_unpack_format")},
    "glob": lambda: _d("escape glob glob0 glob1 has_magic iglob"),
    "tempfile": lambda: {**_d("SpooledTemporaryFile gettempprefix gettempprefixb mktemp"),
                         # the first call probes the candidate folders by creating a file
                         **_j("gettempdir gettempdirb"),
                         **_refused("creating a temporary file or folder", (
                             "NamedTemporaryFile TemporaryDirectory TemporaryFile mkdtemp "
                             "mkstemp"))},
    "getpass": lambda: {**_j("getuser"),
                        **_refused("reading the terminal", "getpass unix_getpass "
                                   "fallback_getpass win_getpass")},
    "resource": lambda: {**_d("struct_rusage"), **_j("getpagesize getrlimit"),
                         **_j("getrusage", _struct(__import__("resource").struct_rusage)),
                         **_refused(_WIDE, "setrlimit prlimit")},
    "locale": lambda: {**_d("normalize getdefaultlocale"),
                       **_j("atof atoi currency delocalize format format_string getencoding "
                            "getlocale getpreferredencoding localeconv localize nl_langinfo "
                            "str strcoll strxfrm dcgettext dgettext gettext"),
                       **_refused(_WIDE, "setlocale resetlocale bindtextdomain "
                                  "bind_textdomain_codeset textdomain")},
    "sqlite3": lambda: {**_d("Binary Blob Connection Cursor Date PrepareProtocol Row Time "
                             "Timestamp adapt complete_statement DateFromTicks TimeFromTicks "
                             "TimestampFromTicks"),
                        "connect": Special("an in-memory database only; a file is IO"),
                        **_refused(_WIDE, "enable_callback_tracebacks enable_shared_cache "
                                   "register_adapter register_converter")},
    "ctypes": lambda: _refused(_CTYPES, (
        "ARRAY Array BigEndianStructure BigEndianUnion CDLL CFUNCTYPE LibraryLoader "
        "LittleEndianStructure LittleEndianUnion POINTER PYFUNCTYPE PyDLL SetPointerType "
        "Structure Union addressof alignment byref c_bool c_buffer c_byte c_char c_char_p "
        "c_double c_float c_int c_int16 c_int32 c_int64 c_int8 c_long c_longdouble "
        "c_longlong c_short c_size_t c_ssize_t c_ubyte c_uint c_uint16 c_uint32 c_uint64 "
        "c_uint8 c_ulong c_ulonglong c_ushort c_void_p c_voidp c_wchar c_wchar_p cast "
        "create_string_buffer create_unicode_buffer get_errno memmove memset pointer "
        "py_object resize set_errno sizeof string_at wstring_at")),
    "importlib": lambda: {**_d("find_loader import_module invalidate_caches"),
                          **_refused("reloading a module (it would undo distdev's coverage)",
                                     "reload")},
    "sys": lambda: {
        **_d("audit breakpointhook call_tracing displayhook exc_info excepthook exception exit "
             "get_asyncgen_hooks get_coroutine_origin_tracking_depth get_int_max_str_digits "
             "getdefaultencoding getdlopenflags getfilesystemencodeerrors "
             "getfilesystemencoding getprofile getrecursionlimit getsizeof getswitchinterval "
             "gettrace intern is_finalizing unraisablehook"),
        **_j("getrefcount getallocatedblocks"),
        **_refused(_WIDE, "addaudithook set_asyncgen_hooks set_coroutine_origin_tracking_depth "
                   "set_int_max_str_digits setdlopenflags setrecursionlimit "
                   "setswitchinterval"),
        "settrace": HOOKS, "setprofile": HOOKS},
    "email.utils": lambda: _d(
        "Charset collapse_rfc2231_value decode_params decode_rfc2231 encode_rfc2231 "
        "format_datetime formataddr formatdate getaddresses localtime make_msgid mktime_tz "
        "parseaddr parsedate parsedate_to_datetime parsedate_tz quote unquote"),
    "timeit": lambda: {**_d("Timer reindent repeat timeit"),
                       **_j("default_timer"),
                       **_refused("running a program's command line", "main")},
    "signal": lambda: {**_d("Handlers Sigmasks Signals default_int_handler getsignal "
                            "strsignal struct_siginfo valid_signals"),
                       **_refused(_SIGNALS, "alarm getitimer pause pidfd_send_signal "
                                  "pthread_kill pthread_sigmask raise_signal set_wakeup_fd "
                                  "setitimer siginterrupt signal sigpending sigtimedwait "
                                  "sigwait sigwaitinfo")},
    "select": lambda: _refused("waiting on file descriptors", "epoll poll select"),
    "threading": lambda: {
        **_d("Barrier BoundedSemaphore Condition Event ExceptHookArgs Lock RLock Semaphore "
             "WeakSet activeCount active_count currentThread current_thread enumerate "
             "excepthook get_ident main_thread getprofile gettrace local stack_size"),
        **_j("get_native_id"),
        "Thread": THREADS, "Timer": THREADS,
        "settrace": HOOKS, "setprofile": HOOKS},
    "_thread": lambda: {**_d("LockType RLock allocate allocate_lock exit exit_thread "
                             "get_ident stack_size"),
                        **_j("get_native_id"),
                        **_refused(_THREAD, "start_new start_new_thread"),
                        **_refused(_SIGNALS, "interrupt_main")},
    "subprocess": lambda: {**_d("CompletedProcess list2cmdline"),
                           **_refused(_PROCESS, "Popen call check_call check_output "
                                      "getoutput getstatusoutput run")},
    "multiprocessing": lambda: {**_d("current_process get_all_start_methods "
                                     "get_start_method parent_process get_logger "
                                     "active_children cpu_count"),
                                **_refused(_PROCESS, (
                                    "Array Barrier BoundedSemaphore Condition Event "
                                    "JoinableQueue Lock Manager Pipe Pool Process Queue "
                                    "RLock RawArray RawValue Semaphore SimpleQueue Value "
                                    "allow_connection_pickling freeze_support get_context "
                                    "log_to_stderr set_executable set_forkserver_preload "
                                    "set_start_method"))},
    "builtins": lambda: {
        **_d("abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr "
             "classmethod compile complex copyright credits delattr dict dir divmod enumerate "
             "eval exec exit filter float format frozenset getattr globals hasattr hash help "
             "hex int isinstance issubclass iter len license list locals map max memoryview min "
             "next object oct ord pow print property quit range repr reversed round set "
             "setattr slice sorted staticmethod str sum super tuple type vars zip"),
        "id": Special("object identity: not reproducible; the state digest catches what "
                      "depends on it"),
        "open": FILES,
        **_refused("reading standard input", "input")},
}
"""Module name -> its public callables' rules (a function, so a module is imported only when
the table is read)."""

_ASYNCIO_LOOPS = ("running an asyncio event loop: it waits on real sockets and a real clock, "
                  "which replay cannot reproduce; run the coroutine inside an @effect")
SURFACE["asyncio"] = lambda: {
    **_refused(_ASYNCIO_LOOPS, "run new_event_loop get_event_loop Runner SelectorEventLoop "
               "BaseEventLoop DefaultEventLoopPolicy set_event_loop set_event_loop_policy "
               "get_event_loop_policy"),
    **_refused(_PROCESS, "create_subprocess_exec create_subprocess_shell get_child_watcher "
               "set_child_watcher AbstractChildWatcher FastChildWatcher MultiLoopChildWatcher "
               "PidfdChildWatcher SafeChildWatcher ThreadedChildWatcher"),
    **_refused(_NET, "open_connection open_unix_connection start_server start_unix_server"),
    **_refused(_THREAD, "to_thread run_coroutine_threadsafe"),
    **_d("AbstractEventLoop AbstractEventLoopPolicy AbstractServer Barrier BaseProtocol "
         "BaseTransport BoundedSemaphore BufferedProtocol Condition DatagramProtocol "
         "DatagramTransport Event Future Handle LifoQueue Lock PriorityQueue Protocol Queue "
         "ReadTransport Semaphore Server StreamReader StreamReaderProtocol StreamWriter "
         "SubprocessProtocol SubprocessTransport Task TaskGroup Timeout TimerHandle Transport "
         "WriteTransport all_tasks as_completed create_task current_task ensure_future gather "
         "get_running_loop iscoroutine iscoroutinefunction isfuture shield sleep timeout "
         "timeout_at wait wait_for wrap_future"),
}

MODULES = tuple(SURFACE)
"""The modules the table covers; each is imported when the guards are installed."""
