//! Cooperative synchronisation primitives (gevent's `gevent.event`,
//! `gevent.queue`, `gevent.lock`). They are for greenlets of one hub;
//! every blocking call parks only the calling greenlet, wakes waiters in
//! FIFO order, and can be interrupted by kill and Timeout.
