"""RabbitMQ through aio-pika: a robust connection, a durable topic exchange, confirmed publishes.

The connection is established in the background so a service starts (and reports itself
not ready) while the broker is down; aio-pika's robust connection then reconnects by itself
and restores channels, exchanges, queues and consumers.

At shutdown `close` ends the consumers' channels first (RabbitMQ requeues what they had not
acknowledged, for another replica), then the publishing channels, then the connection, each
with a clean AMQP close handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustExchange,
    AbstractRobustQueue,
)

from .events import Event

log = logging.getLogger(__name__)

MessageHandler = Callable[[AbstractIncomingMessage], Awaitable[None]]
Subscriber = Callable[["Broker"], Awaitable[None]]


class BrokerUnavailable(RuntimeError):
    """The broker is not connected; the caller decides whether that loses anything."""


class Broker:
    def __init__(self, url: str, exchange_name: str, retry_interval: float = 1.0) -> None:
        self._url = url
        self._exchange_name = exchange_name
        self._retry_interval = retry_interval
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractRobustExchange | None = None
        self._unconfirmed_exchange: AbstractRobustExchange | None = None
        self._notify_channel: AbstractRobustChannel | None = None
        # Channels handed out by `new_channel` (consumers), closed first at shutdown.
        self._extra_channels: list[AbstractRobustChannel] = []
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscribers: list[Subscriber] = []
        # Bumped whenever the connection is lost or restored: a cache that relies on events
        # compares generations to know whether it may have missed one.
        self.generation = 0

    @property
    def exchange_name(self) -> str:
        return self._exchange_name

    @property
    def is_connected(self) -> bool:
        return (
            self._connection is not None
            and self._connection.connected.is_set()
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def subscribe(self, subscriber: Subscriber) -> None:
        """Run `subscriber` (declare queues, start consuming) once the broker is connected.

        The robust connection re-declares what a subscriber set up after any reconnect.
        """
        self._subscribers.append(subscriber)
        if self._connected.is_set():
            await subscriber(self)

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="broker-connect")

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def _connect_forever(self) -> None:
        while True:
            try:
                connection = await aio_pika.connect_robust(
                    self._url, timeout=5, reconnect_interval=self._retry_interval
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rabbitmq unreachable, retrying", extra={"error": str(exc)})
                await asyncio.sleep(self._retry_interval)
                continue
            try:
                self._connection = connection
                connection.close_callbacks.add(self._bump_generation)
                connection.reconnect_callbacks.add(self._bump_generation)
                self._channel = await connection.channel(publisher_confirms=True)
                self._exchange = await self._channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                # Best-effort notifications skip the confirm round trip (and its CPU).
                notify_channel = await connection.channel(publisher_confirms=False)
                self._notify_channel = notify_channel
                self._unconfirmed_exchange = await notify_channel.declare_exchange(
                    self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
                )
                for subscriber in self._subscribers:
                    await subscriber(self)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("rabbitmq set-up failed, retrying", extra={"error": str(exc)})
                self._channel = None
                self._notify_channel = None
                self._extra_channels.clear()
                self._exchange = None
                self._unconfirmed_exchange = None
                with contextlib.suppress(Exception):
                    await connection.close()
                self._connection = None
                await asyncio.sleep(self._retry_interval)
                continue
            log.info("rabbitmq connected", extra={"exchange": self._exchange_name})
            self._connected.set()
            return

    def _bump_generation(self, *_: object) -> None:
        self.generation += 1
        log.info("rabbitmq connection state changed", extra={"generation": self.generation})

    async def publish(self, event: Event, timeout: float = 5.0, *, confirm: bool = True) -> None:
        """Publish a persistent message; with `confirm`, wait for the broker's confirm.

        Without it the message is handed to the connection and may be lost if the broker
        fails at that moment: only for notifications whose loss costs nothing.
        """
        exchange = self._exchange if confirm else self._unconfirmed_exchange
        if exchange is None or not self.is_connected:
            raise BrokerUnavailable("rabbitmq is not connected")
        message = aio_pika.Message(
            body=event.to_json(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=event.id,
            type=event.type,
        )
        try:
            # Not mandatory: an event nobody subscribes to yet is not an error (and a
            # returned message would cost a round trip and a log line for each publish).
            await exchange.publish(
                message, routing_key=event.type, mandatory=False, timeout=timeout
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise BrokerUnavailable(f"publish not confirmed: {exc}") from exc

    async def new_channel(self, prefetch: int = 64) -> AbstractRobustChannel:
        if self._connection is None:
            raise BrokerUnavailable("rabbitmq is not connected")
        channel: AbstractRobustChannel = await self._connection.channel()
        self._extra_channels.append(channel)
        await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def bind_queue(
        self,
        channel: AbstractRobustChannel,
        queue_name: str,
        routing_keys: list[str],
        *,
        exclusive: bool,
    ) -> AbstractRobustQueue:
        exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue: AbstractRobustQueue = await channel.declare_queue(
            queue_name,
            durable=not exclusive,
            exclusive=exclusive,
            auto_delete=exclusive,
        )
        for key in routing_keys:
            await queue.bind(exchange, routing_key=key)
        return queue

    async def close(self, timeout: float = 5.0) -> None:
        """Close consumer channels, then publishing channels, then the connection; each step
        waits at most `timeout` seconds (a broker that is down cannot answer the handshake)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        publishing = [self._channel, self._notify_channel]
        for channel in [*self._extra_channels, *publishing]:
            if channel is not None and not channel.is_closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(channel.close(), timeout)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._connection.close(), timeout)
        self._connection = None
        self._channel = None
        self._notify_channel = None
        self._extra_channels.clear()
        self._exchange = None
        self._unconfirmed_exchange = None
