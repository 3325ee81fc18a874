//! Groups and pools of greenlets (gevent's `gevent.pool`).
