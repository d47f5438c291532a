"""RQ job functions (ids in, loud failures), the queue module and the worker."""
