-- SPDX-License-Identifier: MIT
DROP TABLE messages;
DROP TABLE conversations;
DROP TYPE message_role;
