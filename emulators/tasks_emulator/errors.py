"""The one error the emulator raises: a gRPC status the servicer hands back to the caller as is."""

from __future__ import annotations

import grpc


class ApiError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(name: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, f"Requested entity was not found: {name}")


def already_exists(name: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, f"Requested entity already exists: {name}")
