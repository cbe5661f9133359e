# PostgreSQL 15 with pg_llm installed by the same scripts `make install` uses.
#   docker build -t pg_llm .            # extension + backend Python deps
#   docker build --build-arg LOCAL_ENGINE=1 -t pg_llm:local .   # also the local engine venv
FROM postgres:15

ARG LOCAL_ENGINE=0
ENV PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config \
    PG_LLM_PYTHON_PATH=/usr/local/lib/pg_llm/python

COPY . /usr/src/pg_llm
WORKDIR /usr/src/pg_llm

RUN apt-get update \
 && apt-get install -y --no-install-recommends make gcc python3 python3-pip python3-venv ca-certificates \
 && scripts/install-system.sh \
 && make ext backend-python \
 && if [ "$LOCAL_ENGINE" = 1 ]; then \
      apt-get install -y --no-install-recommends g++ cmake \
      && python3 -m venv /opt/pg_llm && /opt/pg_llm/bin/pip install --no-cache-dir '.[serve]' \
      && ln -s /opt/pg_llm/bin/pg-llm /usr/local/bin/pg-llm; \
    fi \
 && rm -rf /var/lib/apt/lists/*

# Load pg_llm into new databases created from template1 by the entrypoint's init scripts.
COPY docker/initdb-pg_llm.sql /docker-entrypoint-initdb.d/10-pg_llm.sql
