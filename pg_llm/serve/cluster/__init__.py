"""The local engine on a Ray cluster (docs/scale-out.md): `pg-llm serve --ray ADDRESS`.

    app.py        the Ray Serve deployment: N replicas of the same FastAPI app
    shared.py     what replicas share through the data dir: fine-tuned models, job requests
    scheduler.py  one detached actor that runs queued jobs, each as a Ray task

Needs `ray[serve]` (optional extra `ray`, or `make ray-venv`); nothing here is imported by
the plain engine.
"""
