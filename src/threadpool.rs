//! A pool of native threads for blocking work (gevent's `ThreadPool`).
