"""Serving side: the FastAPI model server for the SageMaker hosting contract.

The modules, in the order a request meets them (docs/architecture.md draws the path):

- ``__main__``: ``python -m app`` (the image's ``serve``): settings, logging, uvicorn, SIGTERM.
- ``settings``: every operator knob (``SERVE_*``, ``SAGEMAKER_*``), read once at start-up.
- ``sagemaker``: the hosting contract, serving side: custom attributes, offline env, transform.
- ``api``: the HTTP layer: routes, the request-context middleware, error rendering.
- ``codecs``: request bodies in and response bodies out, by Content-Type and Accept.
- ``schemas``: the wire schemas (the Hugging Face request, predictions, error body).
- ``errors``: the error tree, the one code -> HTTP status table, the one error body shape.
- ``engine``: the model's life in the server: loading, ready, draining, stopped.
- ``inference``: the façade the handler calls: queue room, text cap, tokenizing, ranking.
- ``batching``: the dynamic batcher: a bounded queue and one consumer that feeds the model.
- ``model``: the classifier loaded from the artifact, run by PyTorch or ONNX Runtime.
- ``scoring``: logits to ranked (label, score) pairs, as the transformers pipeline does.
- ``observability``: JSON logs and Prometheus metrics.
"""
