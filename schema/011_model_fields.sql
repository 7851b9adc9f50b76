-- Where a service's request body names its model, as the old gateway reads
-- it for the job: Kling (and new-api's Kling adaptor) runs `model_name`,
-- the others `model`. A dotted path of [A-Za-z0-9_] names, matched as the
-- price rules' fields are; a service without a row reads `model`. Where the
-- body also names another model in `model` or `model_name`, the dearer of
-- the two prices the request.
CREATE TABLE IF NOT EXISTS bltcy_model_fields (
  service varchar(32) NOT NULL,
  field varchar(64) NOT NULL,
  PRIMARY KEY (service)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

INSERT IGNORE INTO bltcy_model_fields (service, field) VALUES
  ('kling', 'model_name'),
  ('runway', 'model'),
  ('suno', 'model'),
  ('pika', 'model'),
  ('jimeng', 'model');

-- loaded with the channels: an edit is seen on the next request
CREATE OR REPLACE TRIGGER bltcy_model_fields_ai AFTER INSERT ON bltcy_model_fields
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_model_fields_au AFTER UPDATE ON bltcy_model_fields
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
CREATE OR REPLACE TRIGGER bltcy_model_fields_ad AFTER DELETE ON bltcy_model_fields
FOR EACH ROW UPDATE bltcy_meta SET v = v + 1 WHERE k = 'channels';
