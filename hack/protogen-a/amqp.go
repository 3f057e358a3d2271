package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// amqpClient publishes n messages with confirms through a topic exchange,
// consumes and acks them, gets one more and then nothing, and declares a
// queue that does not exist passively (refused with 404). It logs the
// methods it caused, by class.method name, as the dissector names them:
// its requests, and what the broker sent unasked (deliveries, confirms).
func amqpClient(args []string) error {
	fs := flag.NewFlagSet("amqp-client", flag.ExitOnError)
	url := fs.String("url", "amqp://guest:guest@127.0.0.1:5672/", "broker")
	n := fs.Int("n", 10, "messages")
	logPath := fs.String("log", "", "write counts here")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := counts{}
	m := func(name string) { c.add(1, "amqp", "methods", name) }

	conn, err := amqp.DialConfig(*url, amqp.Config{Properties: amqp.Table{"connection_name": "shark-amqp-client"}})
	if err != nil {
		return err
	}
	defer conn.Close()
	m("connection.start")
	m("connection.tune")
	m("connection.open")
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	m("channel.open")
	if err := ch.Confirm(false); err != nil {
		return err
	}
	m("confirm.select")
	if err := ch.ExchangeDeclare("shop", "topic", false, true, false, false, nil); err != nil {
		return err
	}
	m("exchange.declare")
	if _, err := ch.QueueDeclare("orders", false, false, false, false, amqp.Table{"x-max-length": int32(1000)}); err != nil {
		return err
	}
	m("queue.declare")
	if err := ch.QueueBind("orders", "orders.#", "shop", false, nil); err != nil {
		return err
	}
	m("queue.bind")
	if err := ch.Qos(5, 0, false); err != nil {
		return err
	}
	m("basic.qos")

	publish := func(i int) error {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "shop", "orders.created", false, false, amqp.Publishing{
			ContentType:   "application/json",
			DeliveryMode:  amqp.Persistent,
			MessageId:     "m-" + strconv.Itoa(i),
			CorrelationId: "c-" + strconv.Itoa(i),
			Headers:       amqp.Table{"trace-id": "t-" + strconv.Itoa(i), "attempt": int32(1)},
			Body:          []byte(`{"order":` + strconv.Itoa(i) + `,"items":["book","pen"],"total":19.5}`),
		})
		if err != nil {
			return err
		}
		m("basic.publish")
		// One confirm in flight at a time: the broker acks each publish
		// on its own, never several with "multiple".
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("publish %d not confirmed: %v", i, err)
		}
		m("basic.ack")
		return nil
	}
	for i := range *n {
		if err := publish(i); err != nil {
			return err
		}
	}

	deliveries, err := ch.ConsumeWithContext(ctx, "orders", "billing", false, false, false, false, nil)
	if err != nil {
		return err
	}
	m("basic.consume")
	for i := range *n {
		select {
		case d := <-deliveries:
			m("basic.deliver")
			if err := d.Ack(false); err != nil {
				return err
			}
			m("basic.ack")
		case <-ctx.Done():
			return fmt.Errorf("received %d of %d deliveries", i, *n)
		}
	}
	if err := ch.Cancel("billing", false); err != nil {
		return err
	}
	m("basic.cancel")

	if err := publish(*n); err != nil {
		return err
	}
	for _, want := range []bool{true, false} {
		_, ok, err := ch.Get("orders", true)
		if err != nil {
			return err
		}
		if ok != want {
			return fmt.Errorf("basic.get: got a message %v, want %v", ok, want)
		}
		m("basic.get")
	}

	// A passive declare of a missing queue: the broker closes the channel.
	_, err = ch.QueueDeclarePassive("missing", false, false, false, false, nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		return fmt.Errorf("passive declare of a missing queue: %v", err)
	}
	m("queue.declare")
	m("channel.close")
	if err := conn.Close(); err != nil {
		return err
	}
	m("connection.close")
	if *logPath == "" {
		return nil
	}
	return c.write(*logPath)
}
