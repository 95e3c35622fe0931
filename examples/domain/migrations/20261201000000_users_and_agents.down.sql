-- SPDX-License-Identifier: MIT
DROP TABLE agents;
DROP TABLE users;
DROP TYPE agent_status;
