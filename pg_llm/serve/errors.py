"""OpenAI-shaped error responses: {"error": {"message", "type", "param", "code"}}.

The official client maps the HTTP status to its typed errors (400 BadRequestError,
401 AuthenticationError, 404 NotFoundError, 429 RateLimitError, 503 InternalServerError).
"""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = \
            status, message, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


def not_found(message: str, param: str | None = None) -> ApiError:
    return ApiError(404, message, "invalid_request_error", param, "not_found")


def unauthorized() -> ApiError:
    return ApiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>' "
                    "with the key given to `pg-llm serve --api-key` (or PG_LLM_SERVE_API_KEY).",
                    "invalid_request_error", None, "invalid_api_key")


def overloaded(message: str) -> ApiError:
    return ApiError(503, message, "server_error", None, "engine_overloaded")


def rate_limited(message: str) -> ApiError:
    return ApiError(429, message, "rate_limit_error", None, "rate_limit_exceeded")


def model_not_found(model_id: str) -> ApiError:
    return ApiError(404, f"The model `{model_id}` does not exist or you do not have access "
                    "to it.", "invalid_request_error", "model", "model_not_found")
