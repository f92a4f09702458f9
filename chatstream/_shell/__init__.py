"""The threaded I/O shell around the core: sending the request, reading the body on a
worker thread, the watchdog, delivery to the queue and the callbacks.

Private: nothing here is a public interface. The public faces (:mod:`chatstream.client`,
:mod:`chatstream.stream`) are built on it.
"""
