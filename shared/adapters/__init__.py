"""Adapters to PostgreSQL, Firestore, Pub/Sub, Cloud Tasks, FCM, Xendit and Firebase Auth."""
