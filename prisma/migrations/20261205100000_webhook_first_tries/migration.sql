-- CreateTable
CREATE TABLE "webhook_first_tries" (
    "stored_event_id" UUID NOT NULL,
    "lease_until" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_first_tries_pkey" PRIMARY KEY ("stored_event_id")
);

-- AddForeignKey
ALTER TABLE "webhook_first_tries" ADD CONSTRAINT "webhook_first_tries_stored_event_id_fkey" FOREIGN KEY ("stored_event_id") REFERENCES "delivery_events"("id") ON DELETE CASCADE ON UPDATE CASCADE;
